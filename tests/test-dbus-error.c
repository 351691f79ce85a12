/* Every VMI_ERROR code travels as its own org.vmimaged.VMImage1.Error.<Name>, and back. */
#include <gio/gio.h>

#include "vmi-dbus-error.h"

static const char *const names[] = {
	[VMI_ERROR_FAILED] = "Failed",
	[VMI_ERROR_NOT_AUTHORIZED] = "NotAuthorized",
	[VMI_ERROR_ACCESS_DENIED] = "AccessDenied",
	[VMI_ERROR_UNKNOWN_FORMAT] = "UnknownFormat",
	[VMI_ERROR_CORRUPT_IMAGE] = "CorruptImage",
	[VMI_ERROR_UNSAFE_IMAGE] = "UnsafeImage",
	[VMI_ERROR_NOT_SUPPORTED] = "NotSupported",
	[VMI_ERROR_INVALID_ARGUMENT] = "InvalidArgument",
	[VMI_ERROR_EXISTS] = "Exists",
	[VMI_ERROR_CANCELLED] = "Cancelled",
	[VMI_ERROR_NO_SPACE] = "NoSpace",
};

G_STATIC_ASSERT (G_N_ELEMENTS (names) == VMI_ERROR_LAST);

static void
test_names (void)
{
	vmi_dbus_error_register ();
	vmi_dbus_error_register (); /* twice is harmless */
	for (gint code = 0; code < VMI_ERROR_LAST; code++) {
		g_autoptr(GError) error = g_error_new (VMI_ERROR, code, "message %d", code);
		g_autoptr(GError) back = NULL;
		g_autofree char *expected = g_strconcat (VMI_DBUS_ERROR_PREFIX, names[code], NULL);
		g_autofree char *encoded = g_dbus_error_encode_gerror (error);

		g_assert_cmpstr (encoded, ==, expected);
		g_assert_cmpstr (vmi_dbus_error_name (code), ==, expected);
		/* A client that registers the domain gets the code back. */
		back = g_dbus_error_new_for_dbus_error (expected, "message");
		g_assert_error (back, VMI_ERROR, code);
	}
	g_assert_cmpstr (vmi_dbus_error_name (-1), ==, VMI_DBUS_ERROR_PREFIX "Failed");
	g_assert_cmpstr (vmi_dbus_error_name (VMI_ERROR_LAST), ==, VMI_DBUS_ERROR_PREFIX "Failed");
}

static void
check_normalize (GQuark domain, gint code, gint expected)
{
	g_autoptr(GError) error = g_error_new_literal (domain, code, "the text");

	vmi_dbus_error_normalize (&error);
	g_assert_error (error, VMI_ERROR, expected);
	g_assert_cmpstr (error->message, ==, "the text");
}

static void
test_normalize (void)
{
	GError *none = NULL;

	vmi_dbus_error_normalize (&none);
	g_assert_null (none);
	vmi_dbus_error_normalize (NULL);
	check_normalize (VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE, VMI_ERROR_UNSAFE_IMAGE);
	check_normalize (G_IO_ERROR, G_IO_ERROR_CANCELLED, VMI_ERROR_CANCELLED);
	check_normalize (G_IO_ERROR, G_IO_ERROR_NO_SPACE, VMI_ERROR_NO_SPACE);
	check_normalize (G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, VMI_ERROR_ACCESS_DENIED);
	check_normalize (G_IO_ERROR, G_IO_ERROR_EXISTS, VMI_ERROR_EXISTS);
	check_normalize (G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY, VMI_ERROR_INVALID_ARGUMENT);
	check_normalize (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, VMI_ERROR_NOT_SUPPORTED);
	check_normalize (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, VMI_ERROR_FAILED);
	check_normalize (G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED, VMI_ERROR_NOT_AUTHORIZED);
	check_normalize (G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER, VMI_ERROR_FAILED);
	check_normalize (G_FILE_ERROR, G_FILE_ERROR_ACCES, VMI_ERROR_ACCESS_DENIED);
	check_normalize (G_FILE_ERROR, G_FILE_ERROR_NOSPC, VMI_ERROR_NO_SPACE);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/dbus-error/names", test_names);
	g_test_add_func ("/dbus-error/normalize", test_normalize);
	return g_test_run ();
}
