/*
 * Tests of the UEC tarball plugin: tarballs assembled here with tar from a real Debian kernel
 * (downloaded and unpacked, never installed), a gzipped newc initrd of files from the same
 * package, and a raw disk made with sfdisk and mkfs.ext4; then hostile archives (.., absolute
 * names, links, a device node), a gzip bomb made here with zlib, truncated archives and a
 * .tar.gz with no disk.
 */
#include <zlib.h>

#include "boot-test-common.h"

extern const VmiFormatPlugin vmi_uec_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

#define PREFIX "bookworm-server-cloudimg-amd64"
#define DISK_NAME PREFIX ".img"
#define KERNEL_NAME PREFIX "-vmlinuz-cloud"
#define INITRD_NAME PREFIX "-initrd-cloud"
#define README_NAME "README.files"

/* What every test starts from, made once: the three files and a tarball of them. */
static struct {
	char *dir;
	char *disk;
	char *kernel;
	char *initrd;
	char *readme;
	char *tarball;
	char *kernel_origin; /* the Debian package, or why a stand-in was used */
	gboolean real_kernel;
	VmiRegistry *registry; /* every module of the build folder */
} assets;

typedef struct {
	char *dir;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
	f->dir = vmi_test_tmpdir_new ();
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
	vmi_test_tmpdir_free (f->dir);
}

/* A bzImage-shaped stand-in when the Debian kernel cannot be downloaded. */
static void
make_stand_in_kernel (const char *path)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed (7);
	gsize len = 300 * 1024 + 17;
	g_autofree guint8 *k = g_malloc (len);

	for (gsize i = 0; i < len; i++)
		k[i] = (guint8) g_rand_int (rand);
	k[0x1fe] = 0x55;
	k[0x1ff] = 0xaa;
	memcpy (k + 0x202, "HdrS", 4);
	vmi_test_write_file (path, k, (gssize) len);
}

/*
 * Debian's cloud kernel package, unpacked into dir (/boot and two small modules only). TRUE with
 * assets.kernel and a folder of modules for the initrd; FALSE (and why) if apt cannot get it.
 */
static gboolean
fetch_debian_kernel (const char *dir, char **modules_dir)
{
	g_autofree char *deps = NULL, *package = NULL, *quoted = g_shell_quote (dir);
	g_autofree char *out = NULL;
	const char *line;

	if (vmi_test_sh (&deps, "apt-cache depends linux-image-cloud-amd64 2>/dev/null") != 0 ||
	    (line = strstr (deps, "Depends: linux-image-")) == NULL) {
		assets.kernel_origin = g_strdup ("apt-cache knows no linux-image-cloud-amd64");
		return FALSE;
	}
	package = g_strndup (line + 9, strcspn (line + 9, " \n<>"));
	if (vmi_test_sh (NULL, "cd %s && apt-get download -q %s >/dev/null 2>&1", quoted, package) != 0) {
		assets.kernel_origin = g_strdup_printf ("apt-get download %s failed (offline?)", package);
		return FALSE;
	}
	/* A module that a later kernel builds in is only missing from the initrd: no error. */
	vmi_test_sh_ok ("cd %s && mkdir pkg && { dpkg-deb --fsys-tarfile %s_*.deb | "
			"tar -x -C pkg --wildcards './boot/vmlinuz-*' './boot/config-*' "
			"'./lib/modules/*/kernel/fs/autofs/*' './lib/modules/*/kernel/fs/efivarfs/*' "
			"2>/dev/null; rm -f %s_*.deb; }",
			quoted, package, package);
	g_assert_cmpint (vmi_test_sh (&out, "ls %s/pkg/boot/vmlinuz-*", quoted), ==, 0);
	g_strstrip (out);
	assets.kernel = g_steal_pointer (&out);
	*modules_dir = g_build_filename (dir, "pkg", NULL);
	assets.kernel_origin = g_steal_pointer (&package);
	return TRUE;
}

/* A raw disk: an MBR with one Linux partition holding an ext4 file system with a file. */
static void
make_disk (const char *dir, const char *path)
{
	g_autofree char *q = g_shell_quote (path);
	g_autofree char *qdir = g_shell_quote (dir);

	vmi_test_sh_ok ("cd %s && mkdir -p root && head -c 300000 /dev/urandom > root/data && "
			"echo hello > root/hello && rm -f fs.img && "
			"mkfs.ext4 -q -F -d root fs.img 4M >/dev/null 2>&1 && "
			"truncate -s 6M %s && printf 'label: dos\\nstart=2048, size=8192, type=83\\n' | "
			"sfdisk -q %s >/dev/null && dd if=fs.img of=%s bs=1M seek=1 conv=notrunc "
			"status=none && truncate -s +1536 %s && rm -rf root fs.img",
			qdir, q, q, q, q);
}

static void
prepare_assets (void)
{
	g_autofree char *modules = NULL;
	g_autofree char *q = NULL;
	const char *plugin_dir = g_getenv ("VMI_TEST_PLUGIN_DIR");
	g_autoptr(GError) error = NULL;

	assets.dir = vmi_test_tmpdir_new ();
	q = g_shell_quote (assets.dir);
	assets.disk = g_build_filename (assets.dir, DISK_NAME, NULL);
	assets.initrd = g_build_filename (assets.dir, INITRD_NAME, NULL);
	assets.readme = g_build_filename (assets.dir, README_NAME, NULL);
	assets.tarball = g_build_filename (assets.dir, PREFIX ".tar.gz", NULL);
	make_disk (assets.dir, assets.disk);
	vmi_test_write_file (assets.readme, "The files in this tarball:\n- the machine image\n", -1);
	assets.real_kernel = fetch_debian_kernel (assets.dir, &modules);
	if (assets.real_kernel) {
		vmi_test_sh_ok ("cd %s && cp %s %s", q, assets.kernel, KERNEL_NAME);
		/* The initrd: modules and config from the package, with an /init, gzipped. */
		vmi_test_sh_ok ("cd %s && printf '#!/bin/sh\\nexec /bin/sh\\n' > init && "
				"chmod +x init && cp boot/config-* config && "
				"{ echo init; echo config; find lib -type f 2>/dev/null; } | "
				"cpio -o -H newc --quiet | gzip -9 > %s/%s",
				modules, q, INITRD_NAME);
	} else {
		g_autofree char *stand_in = g_build_filename (assets.dir, KERNEL_NAME, NULL);

		vmi_test_sh_ok ("cd %s && mkdir -p rd && printf '#!/bin/sh\\n' > rd/init && "
				"head -c 50000 /dev/urandom > rd/blob && "
				"cd rd && printf 'init\\nblob\\n' | cpio -o -H newc --quiet | gzip > ../%s",
				q, INITRD_NAME);
		make_stand_in_kernel (stand_in);
	}
	g_free (assets.kernel);
	assets.kernel = g_build_filename (assets.dir, KERNEL_NAME, NULL);
	vmi_test_sh_ok ("cd %s && tar -cf - %s %s %s %s | gzip -1 > %s.tar.gz", q, DISK_NAME, KERNEL_NAME,
			INITRD_NAME, README_NAME, PREFIX);
	if (plugin_dir != NULL) {
		g_autofree char *qplugins = g_shell_quote (plugin_dir);
		g_autofree char *modules_dir = g_build_filename (assets.dir, "modules", NULL);

		/*
		 * Every module of the build but raw and uec, whose code is linked into this program
		 * (loading a second copy is an ODR violation to ASan): those two are added as linked.
		 */
		vmi_test_sh_ok ("mkdir %s/modules && for m in %s/vmi-*.so; do case $m in "
				"*/vmi-raw.so|*/vmi-uec.so) ;; *) ln -s \"$m\" %s/modules/ ;; esac; done",
				q, qplugins, q);
		assets.registry = vmi_registry_new ();
		g_assert_true (vmi_registry_add (assets.registry, &vmi_raw_plugin, &error));
		g_assert_true (vmi_registry_add (assets.registry, &vmi_uec_plugin, &error));
		g_assert_true (vmi_registry_load_dir (assets.registry, modules_dir, &error));
		g_assert_no_error (error);
	}
}

static GVariant *
member_fact (GVariant *members, const char *name)
{
	for (gsize i = 0; i < g_variant_n_children (members); i++) {
		g_autoptr(GVariant) m = g_variant_get_child_value (members, i);
		const char *n = NULL;

		if (g_variant_lookup (m, "name", "&s", &n) && g_strcmp0 (n, name) == 0)
			return g_steal_pointer (&m);
	}
	return NULL;
}

static void
check_member (VmiSource *source, guint index, const char *name, const char *role,
	      const char *path, const char *glance)
{
	const VmiImageInfo *info = vmi_source_get_info (source);
	const VmiMember *member = g_ptr_array_index (info->members, index);
	const char *s = NULL;

	g_assert_cmpstr (member->name, ==, name);
	g_assert_cmpstr (member->role, ==, role);
	g_assert_cmpint (member->location, ==, VMI_MEMBER_STREAM);
	g_assert_cmpuint (member->size, ==, vmi_test_file_size (path));
	if (glance != NULL) {
		g_assert_true (g_variant_dict_lookup (member->facts, "disk-format", "&s", &s));
		g_assert_cmpstr (s, ==, glance);
		g_assert_true (g_variant_dict_lookup (member->facts, "container-format", "&s", &s));
		g_assert_cmpstr (s, ==, glance);
	} else {
		g_assert_false (g_variant_dict_contains (member->facts, "disk-format"));
	}
}

static void
test_inspect (void)
{
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_uec_plugin, assets.tarball, NULL);
	g_autoptr(GVariant) info = vmi_source_to_variant (source);
	g_autoptr(GVariant) facts = g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
	g_autoptr(GVariant) members = NULL, disk = NULL;
	const VmiImageInfo *raw_info = vmi_source_get_info (source);
	const char *s = NULL;
	guint64 size = 0, tar_size = 0;
	gboolean safe = FALSE;

	g_test_message ("kernel: %s", assets.kernel_origin);
	if (g_test_verbose ()) {
		g_autofree char *text = g_variant_print (info, TRUE);
		g_printerr ("# %s\n", text);
	}
	g_assert_true (g_variant_lookup (info, "virtual-size", "t", &size));
	g_assert_cmpuint (size, ==, vmi_test_file_size (assets.disk));
	g_assert_true (g_variant_lookup (info, "safe", "b", &safe));
	g_assert_true (safe);
	g_assert_cmpstr (raw_info->disk_format, ==, "ami");
	g_assert_cmpstr (raw_info->container_format, ==, "compressed");

	g_assert_true (g_variant_lookup (facts, "machine-image", "&s", &s));
	g_assert_cmpstr (s, ==, DISK_NAME);
	g_assert_true (g_variant_lookup (facts, "kernel", "&s", &s));
	g_assert_cmpstr (s, ==, KERNEL_NAME);
	g_assert_true (g_variant_lookup (facts, "ramdisk", "&s", &s));
	g_assert_cmpstr (s, ==, INITRD_NAME);
	g_assert_true (g_variant_lookup (facts, "compression", "&s", &s));
	g_assert_cmpstr (s, ==, "gzip");
	/* the tar stream: a 512-byte header per member, data padded to 512, the end blocks */
	g_assert_true (g_variant_lookup (facts, "tar-size", "t", &tar_size));
	g_assert_cmpuint (tar_size, >=, vmi_test_file_size (assets.disk) + vmi_test_file_size (assets.kernel));
	members = g_variant_lookup_value (facts, "members", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_nonnull (members);
	g_assert_cmpuint (g_variant_n_children (members), ==, 4);
	disk = member_fact (members, DISK_NAME);
	g_assert_nonnull (disk);
	g_assert_true (g_variant_lookup (disk, "role", "&s", &s));
	g_assert_cmpstr (s, ==, "disk");
	g_assert_true (g_variant_lookup (disk, "type", "&s", &s));
	g_assert_cmpstr (s, ==, "file");

	g_assert_cmpuint (raw_info->members->len, ==, 4);
	check_member (source, 0, DISK_NAME, "disk", assets.disk, "ami");
	check_member (source, 1, KERNEL_NAME, "kernel", assets.kernel, "aki");
	check_member (source, 2, INITRD_NAME, "ramdisk", assets.initrd, "ari");
	check_member (source, 3, README_NAME, "other", assets.readme, NULL);
}

/* The kernel is Debian's, so the aki plugin (loaded from the build folder) agrees it is one. */
static void
test_debian_kernel (void)
{
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *release = NULL;
	int fd;

	if (!assets.real_kernel) {
		g_test_skip (assets.kernel_origin);
		return;
	}
	if (assets.registry == NULL) {
		g_test_skip ("VMI_TEST_PLUGIN_DIR is not set");
		return;
	}
	fd = open (assets.kernel, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open (assets.registry, fd, -1, NULL, NULL, &error);
	close (fd);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_source_get_plugin (source)->name, ==, "aki");
	g_test_message ("%s is %s", assets.kernel_origin, vmi_test_fact_string (source, "kernel-release"));
}

static GBytes *
read_whole_member (VmiSource *source, guint index, gsize chunk)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);
	const VmiMember *member = g_ptr_array_index (vmi_source_get_info (source)->members, index);
	g_autoptr(GByteArray) bytes = g_byte_array_sized_new ((guint) member->size);
	g_autofree guint8 *buf = g_malloc (chunk);
	g_autoptr(GError) error = NULL;
	guint64 offset = 0;

	for (;;) {
		gsize got = 0;

		g_assert_true (plugin->read_member (vmi_source_get_image (source), index, offset, buf,
						    chunk, &got, &error));
		g_assert_no_error (error);
		if (got == 0)
			break;
		g_byte_array_append (bytes, buf, (guint) got);
		offset += got;
	}
	return g_byte_array_free_to_bytes (g_steal_pointer (&bytes));
}

static void
assert_bytes_equal_file (GBytes *bytes, const char *path)
{
	g_autofree char *contents = NULL;
	gsize len = 0;

	g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
	g_assert_cmpuint (g_bytes_get_size (bytes), ==, len);
	g_assert_true (memcmp (g_bytes_get_data (bytes, NULL), contents, len) == 0);
}

static void
test_read_member (void)
{
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_uec_plugin, assets.tarball, NULL);
	const char *paths[] = { assets.disk, assets.kernel, assets.initrd, assets.readme };
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);
	g_autoptr(GError) error = NULL;
	guint8 a[4096], b[4096];
	gsize got = 0;

	/* In order, odd chunk sizes; then backwards (each restarts the decompression). */
	for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
		g_autoptr(GBytes) bytes = read_whole_member (source, i, 65536 + 7 * i);
		assert_bytes_equal_file (bytes, paths[i]);
	}
	for (guint i = G_N_ELEMENTS (paths); i-- > 0;) {
		g_autoptr(GBytes) bytes = read_whole_member (source, i, 100000);
		assert_bytes_equal_file (bytes, paths[i]);
	}
	/* A read at an offset, then one before it in the same member. */
	vmi_test_read_bytes (assets.disk, 1048576 + 1024, a, sizeof a);
	g_assert_true (plugin->read_member (vmi_source_get_image (source), 0, 1048576 + 1024, b,
					    sizeof b, &got, &error));
	g_assert_no_error (error);
	g_assert_cmpuint (got, ==, sizeof b);
	g_assert_true (memcmp (a, b, sizeof a) == 0);
	vmi_test_read_bytes (assets.disk, 510, a, 2);
	g_assert_true (plugin->read_member (vmi_source_get_image (source), 0, 510, b, 2, &got, &error));
	g_assert_cmpuint (got, ==, 2);
	g_assert_cmpuint (b[0], ==, 0x55);
	g_assert_cmpuint (b[1], ==, 0xaa);
	/* At and past the end: nothing, no error. A member that is not there: an error. */
	g_assert_true (plugin->read_member (vmi_source_get_image (source), 3,
					    vmi_test_file_size (assets.readme), b, sizeof b, &got, &error));
	g_assert_cmpuint (got, ==, 0);
	g_assert_false (plugin->read_member (vmi_source_get_image (source), 4, 0, b, sizeof b, &got,
					     &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
}

/* Converting the tarball converts its machine image: equal per qemu-img compare. */
static void
test_convert (Fixture *f, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (f->dir, "out.raw", NULL);
	g_autofree char *qcow2 = g_build_filename (f->dir, "out.qcow2", NULL);
	g_autoptr(GError) error = NULL;
	const VmiFormatPlugin *qcow2_plugin = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	g_assert_true (vmi_test_convert (&vmi_uec_plugin, assets.tarball, &vmi_raw_plugin, raw, NULL,
					 &error));
	g_assert_no_error (error);
	g_assert_cmpuint (vmi_test_file_size (raw), ==, vmi_test_file_size (assets.disk));
	g_assert_true (vmi_test_qemu_img_compare (assets.disk, "raw", raw, "raw"));
	if (assets.registry == NULL) {
		g_test_skip ("VMI_TEST_PLUGIN_DIR is not set: no qcow2 writer");
		return;
	}
	qcow2_plugin = vmi_registry_lookup (assets.registry, "qcow2", &error);
	g_assert_no_error (error);
	g_assert_true (vmi_test_convert (&vmi_uec_plugin, assets.tarball, qcow2_plugin, qcow2, NULL,
					 &error));
	g_assert_no_error (error);
	g_assert_true (vmi_test_qemu_img_compare (assets.disk, "raw", qcow2, "qcow2"));
	g_assert_true (vmi_test_qemu_img_check (qcow2, "qcow2"));
	g_assert_cmpuint (vmi_test_qemu_img_virtual_size (qcow2, "qcow2"), ==,
			  (vmi_test_file_size (assets.disk) + 511) / 512 * 512);
}

/* Among every plugin of the build, the tarball is a UEC tarball, and nothing else claims it. */
static void
test_detect (Fixture *f, gconstpointer data)
{
	g_autofree char *gz = g_build_filename (f->dir, "disk.gz", NULL);
	g_autofree char *tar = g_build_filename (f->dir, "plain.tar", NULL);
	g_autofree char *named_gz = g_build_filename (f->dir, "plain.tar.gz", NULL);
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	int fd;

	/* The probe alone: a tar.gz, with and without a file name in the gzip header. */
	vmi_test_sh_ok ("gzip -c -n < %s > %s", assets.disk, gz);
	vmi_test_sh_ok ("cd %s && tar -cf %s %s", assets.dir, tar, README_NAME);
	{
		g_autofree char *contents = NULL;

		g_assert_true (g_file_get_contents (assets.tarball, &contents, &len, NULL));
		g_assert_cmpuint (vmi_uec_plugin.probe ((const guint8 *) contents,
							MIN (len, VMI_PROBE_HEAD_SIZE), len),
				  ==, VMI_PROBE_LIKELY);
		g_clear_pointer (&contents, g_free);
		g_assert_true (g_file_get_contents (gz, &contents, &len, NULL));
		g_assert_cmpuint (vmi_uec_plugin.probe ((const guint8 *) contents,
							MIN (len, VMI_PROBE_HEAD_SIZE), len),
				  ==, VMI_PROBE_NO);
		g_clear_pointer (&contents, g_free);
		g_assert_true (g_file_get_contents (tar, &contents, &len, NULL));
		g_assert_cmpuint (vmi_uec_plugin.probe ((const guint8 *) contents,
							MIN (len, VMI_PROBE_HEAD_SIZE), len),
				  ==, VMI_PROBE_NO);
		/* gzip keeps the file name in its header here; the tar still shows through. */
		g_clear_pointer (&contents, g_free);
		vmi_test_sh_ok ("gzip -k %s", tar);
		g_assert_true (g_file_get_contents (named_gz, &contents, &len, NULL));
		g_assert_true (len > 19 && (contents[3] & 0x08) != 0 &&
			       memcmp (contents + 10, "plain.tar", 9) == 0); /* FNAME */
		g_assert_cmpuint (vmi_uec_plugin.probe ((const guint8 *) contents,
							MIN (len, VMI_PROBE_HEAD_SIZE), len),
				  ==, VMI_PROBE_LIKELY);
		/* Cut before the tar header is whole: no verdict from probe. */
		g_assert_cmpuint (vmi_uec_plugin.probe ((const guint8 *) contents, 30, len), ==,
				  VMI_PROBE_NO);
	}
	/* Beside a raw stand-in: the tarball is uec, a gzipped disk stays raw. */
	g_assert_cmpstr (boot_test_detect (&vmi_uec_plugin, assets.tarball, FALSE), ==, "uec");
	g_assert_cmpstr (boot_test_detect (&vmi_uec_plugin, gz, FALSE), ==, "raw");
	if (assets.registry == NULL) {
		g_test_skip ("VMI_TEST_PLUGIN_DIR is not set");
		return;
	}
	/* All the modules, classifying too (ari's WEAK for any gzip must not win). */
	for (guint classify = 0; classify < 2; classify++) {
		g_autoptr(VmiSource) source = NULL;

		fd = open (assets.tarball, O_RDONLY | O_CLOEXEC);
		g_assert_cmpint (fd, >=, 0);
		source = vmi_source_open_full (assets.registry, fd, -1, NULL, classify, NULL, &error);
		close (fd);
		g_assert_no_error (error);
		g_assert_cmpstr (vmi_source_get_plugin (source)->name, ==, "uec");
		g_assert_true (vmi_source_is_safe (source));
	}
}

static void
expect_unsafe (const char *path, const char *const *fragments)
{
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_uec_plugin, path, NULL);
	const VmiImageInfo *info = vmi_source_get_info (source);

	g_assert_false (vmi_source_is_safe (source));
	for (guint i = 0; i < info->unsafe_reasons->len; i++)
		g_test_message ("%s", (const char *) g_ptr_array_index (info->unsafe_reasons, i));
	for (guint i = 0; fragments[i] != NULL; i++) {
		gboolean found = FALSE;

		for (guint j = 0; j < info->unsafe_reasons->len && !found; j++)
			found = strstr (g_ptr_array_index (info->unsafe_reasons, j), fragments[i]) != NULL;
		if (!found)
			g_error ("no unsafe reason mentions '%s'", fragments[i]);
	}
	/* Links and devices are not members the daemon could open; every file still reads. */
	for (guint i = 0; i < info->members->len; i++) {
		const VmiMember *member = g_ptr_array_index (info->members, i);
		g_autoptr(GBytes) bytes = read_whole_member (source, i, 65536);

		g_assert_cmpuint (g_bytes_get_size (bytes), ==, member->size);
	}
}

static void
test_hostile (Fixture *f, gconstpointer data)
{
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree char *dotdot = g_build_filename (f->dir, "dotdot.tar.gz", NULL);
	g_autofree char *abs = g_build_filename (f->dir, "abs.tar.gz", NULL);
	g_autofree char *links = g_build_filename (f->dir, "links.tar.gz", NULL);
	g_autofree char *device = g_build_filename (f->dir, "device.tar.gz", NULL);
	g_autofree char *outside = g_build_filename (f->dir, "x", NULL);
	g_autofree char *before = NULL, *after = NULL;
	struct stat st;

	/* The files sit in f->dir/in; "../x" would land in f->dir, "/etc/x" in /etc. */
	g_assert_false (g_file_test ("/etc/x", G_FILE_TEST_EXISTS));
	vmi_test_sh_ok ("cd %s && mkdir in && cp %s in/" DISK_NAME " && cp %s in/vmlinuz && "
			"echo payload > in/x && ln -s /etc/passwd in/link && "
			"ln in/" DISK_NAME " in/hard.img && mkfifo in/pipe",
			q, assets.disk, assets.initrd);
	g_assert_true (g_file_get_contents ("/etc/passwd", &before, NULL, NULL));
	vmi_test_sh_ok ("cd %s/in && tar -czPf ../dotdot.tar.gz --transform 's,^x$,../x,' " DISK_NAME
			" vmlinuz x",
			q);
	vmi_test_sh_ok ("cd %s/in && tar -czPf ../abs.tar.gz --transform 's,^x$,/etc/x,' " DISK_NAME
			" x",
			q);
	vmi_test_sh_ok ("cd %s/in && tar -czf ../links.tar.gz " DISK_NAME " link hard.img", q);
	vmi_test_sh_ok ("cd %s/in && tar -czPf ../device.tar.gz " DISK_NAME " /dev/null pipe", q);
	vmi_test_save_seed ("uec", dotdot);

	expect_unsafe (dotdot, (const char *const[]){ "\"../x\" has \"..\"", NULL });
	expect_unsafe (abs, (const char *const[]){ "\"/etc/x\" has an absolute path", NULL });
	expect_unsafe (links, (const char *const[]){ "\"link\" is a symlink to \"/etc/passwd\"",
						     "\"hard.img\" is a hardlink to \"" DISK_NAME "\"",
						     NULL });
	expect_unsafe (device, (const char *const[]){ "\"/dev/null\" is a device", "\"pipe\" is a fifo",
						      NULL });
	{
		/* Links are listed, with their targets, but are no members and no disk. */
		g_autoptr(VmiSource) source = vmi_test_open (&vmi_uec_plugin, links, NULL);
		const VmiImageInfo *info = vmi_source_get_info (source);

		g_assert_cmpuint (info->members->len, ==, 1);
		g_assert_cmpstr (((VmiMember *) g_ptr_array_index (info->members, 0))->name, ==, DISK_NAME);
		g_assert_cmpuint (info->virtual_size, ==, vmi_test_file_size (assets.disk));
	}
	/* Nothing was written where the names point. */
	g_assert_false (g_file_test (outside, G_FILE_TEST_EXISTS));
	g_assert_false (g_file_test ("/etc/x", G_FILE_TEST_EXISTS));
	g_assert_true (g_file_get_contents ("/etc/passwd", &after, NULL, NULL));
	g_assert_cmpstr (before, ==, after);
	g_assert_cmpint (lstat (outside, &st), !=, 0);
}

/* A tar header declaring size bytes, for archives built here byte by byte. */
static void
make_tar_header (guint8 *h, const char *name, guint64 size)
{
	guint sum = 0;

	memset (h, 0, 512);
	strcpy ((char *) h, name);
	memcpy (h + 100, "0000644", 7);
	memcpy (h + 108, "0000000", 7);
	memcpy (h + 116, "0000000", 7);
	g_snprintf ((char *) h + 124, 12, "%011" G_GINT64_MODIFIER "o", size);
	memcpy (h + 136, "00000000000", 11);
	h[156] = '0';
	memcpy (h + 257, "ustar\0" "00", 8);
	memset (h + 148, ' ', 8);
	for (guint i = 0; i < 512; i++)
		sum += h[i];
	g_snprintf ((char *) h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static void
deflate_into (z_stream *z, GByteArray *out, const void *data, gsize len, int flush)
{
	guint8 buf[65536];

	z->next_in = (Bytef *) data;
	z->avail_in = (uInt) len;
	do {
		z->next_out = buf;
		z->avail_out = sizeof buf;
		g_assert_cmpint (deflate (z, flush), !=, Z_STREAM_ERROR);
		g_byte_array_append (out, buf, (guint) (sizeof buf - z->avail_out));
	} while (z->avail_out == 0 || z->avail_in > 0);
}

/*
 * A gzip bomb: the tar of one 1 GiB file of zeros, about 1 MiB compressed. Deflating 1 GiB takes
 * seconds, so one fully flushed MiB of zeros (which refers to nothing before it) is repeated.
 */
static void
make_gzip_bomb (const char *path, guint mib)
{
	g_autoptr(GByteArray) out = g_byte_array_new ();
	g_autoptr(GByteArray) mb = g_byte_array_new ();
	g_autofree guint8 *zeros = g_malloc0 (1 << 20);
	guint8 header[512];
	guint8 trailer[8];
	z_stream z = { 0 };
	uLong crc, crc_mb;
	guint64 total;

	make_tar_header (header, "disk.img", (guint64) mib << 20);
	g_assert_cmpint (deflateInit2 (&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), ==, Z_OK);
	g_byte_array_append (out, (const guint8 *) "\x1f\x8b\x08\0\0\0\0\0\x02\x03", 10);
	deflate_into (&z, out, header, sizeof header, Z_FULL_FLUSH);
	deflate_into (&z, mb, zeros, 1 << 20, Z_FULL_FLUSH);
	for (guint i = 0; i < mib; i++)
		g_byte_array_append (out, mb->data, mb->len);
	deflate_into (&z, out, zeros, 1024, Z_FINISH); /* the two end blocks */
	deflateEnd (&z);
	crc = crc32 (0, header, sizeof header);
	crc_mb = crc32 (0, zeros, 1 << 20);
	for (guint i = 0; i < mib; i++)
		crc = crc32_combine (crc, crc_mb, 1 << 20);
	crc = crc32_combine (crc, crc32 (0, zeros, 1024), 1024);
	total = 512 + ((guint64) mib << 20) + 1024;
	for (guint i = 0; i < 4; i++) {
		trailer[i] = (guint8) (crc >> (8 * i));
		trailer[4 + i] = (guint8) (total >> (8 * i));
	}
	g_byte_array_append (out, trailer, 8);
	vmi_test_write_file (path, out->data, out->len);
}

static void
test_gzip_bomb (Fixture *f, gconstpointer data)
{
	g_autofree char *bomb = g_build_filename (f->dir, "bomb.tar.gz", NULL);
	g_autofree char *small = g_build_filename (f->dir, "small.tar.gz", NULL);
	g_autofree char *message = NULL;
	g_autoptr(VmiSource) source = NULL;
	gint64 start;

	/* The same construction at 3 MiB is a valid tarball: the bomb is not refused for its form. */
	make_gzip_bomb (small, 3);
	vmi_test_sh_ok ("gzip -t %s && tar -tzf %s > /dev/null", small, small);
	source = vmi_test_open (&vmi_uec_plugin, small, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 3u << 20);
	vmi_test_save_seed ("uec", small);

	make_gzip_bomb (bomb, 1024);
	g_test_message ("1 GiB of zeros in %" G_GUINT64_FORMAT " bytes", vmi_test_file_size (bomb));
	start = g_get_monotonic_time ();
	message = vmi_test_open_error (&vmi_uec_plugin, bomb, VMI_ERROR_UNSAFE_IMAGE);
	g_test_message ("refused in %" G_GINT64_FORMAT " ms: %s",
			(g_get_monotonic_time () - start) / 1000, message);
	g_assert_nonnull (strstr (message, "gzip bomb"));
	g_assert_nonnull (strstr (message, "\"disk.img\""));
	g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
}

static void
test_truncated (Fixture *f, gconstpointer data)
{
	g_autofree char *cut = g_build_filename (f->dir, "cut.tar.gz", NULL);
	guint64 size = vmi_test_file_size (assets.tarball);
	const guint64 cuts[] = { size / 2, size - 9, size * 9 / 10, 4096 };

	for (gsize i = 0; i < G_N_ELEMENTS (cuts); i++) {
		g_autofree char *message = NULL;

		vmi_test_sh_ok ("head -c %" G_GUINT64_FORMAT " %s > %s", cuts[i], assets.tarball, cut);
		message = vmi_test_open_error (&vmi_uec_plugin, cut, VMI_ERROR_CORRUPT_IMAGE);
		g_test_message ("cut at %" G_GUINT64_FORMAT ": %s", cuts[i], message);
		g_assert_nonnull (strstr (message, "truncated or damaged"));
	}
	vmi_test_sh_ok ("head -c 8192 %s > %s", assets.tarball, cut);
	vmi_test_save_seed ("uec", cut);
}

/* A .tar.gz without a machine image is not a UEC tarball, and not a raw disk either. */
static void
test_no_disk (Fixture *f, gconstpointer data)
{
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree char *path = g_build_filename (f->dir, "boot.tar.gz", NULL);
	g_autofree char *plain = g_build_filename (f->dir, "plain.tar", NULL);
	g_autofree char *gz = g_build_filename (f->dir, "notar.gz", NULL);
	g_autofree char *message = NULL;
	g_autoptr(GError) error = NULL;

	vmi_test_sh_ok ("cd %s && cp %s %s . && tar -czf boot.tar.gz %s " README_NAME, q, assets.initrd,
			assets.readme, INITRD_NAME);
	vmi_test_save_seed ("uec", path);
	message = vmi_test_open_error (&vmi_uec_plugin, path, VMI_ERROR_UNKNOWN_FORMAT);
	g_assert_nonnull (strstr (message, "holds no machine image"));
	g_assert_nonnull (strstr (message, "\"" README_NAME "\""));
	if (assets.registry != NULL) {
		g_autoptr(VmiSource) source = NULL;
		int fd = open (path, O_RDONLY | O_CLOEXEC);

		g_assert_cmpint (fd, >=, 0);
		source = vmi_source_open (assets.registry, fd, -1, NULL, NULL, &error);
		close (fd);
		g_assert_null (source);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	}
	/* Forced on what is no gzipped tar: a plain tar, a gzip of something else. */
	vmi_test_sh_ok ("cd %s && tar -cf plain.tar %s && gzip -c " README_NAME " > notar.gz", q,
			INITRD_NAME);
	g_clear_pointer (&message, g_free);
	message = vmi_test_open_error (&vmi_uec_plugin, plain, VMI_ERROR_UNKNOWN_FORMAT);
	g_assert_nonnull (strstr (message, "plain tar"));
	g_clear_pointer (&message, g_free);
	message = vmi_test_open_error (&vmi_uec_plugin, gz, VMI_ERROR_UNKNOWN_FORMAT);
}

/* Roles from content when the names say nothing, and a loader kernel. */
static void
test_roles (Fixture *f, gconstpointer data)
{
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree char *path = g_build_filename (f->dir, "anon.tar.gz", NULL);
	g_autoptr(VmiSource) source = NULL;
	const VmiImageInfo *info;
	gboolean loader = FALSE;

	vmi_test_sh_ok ("cd %s && cp %s a && cp %s b && gunzip -c < %s > c && cp %s d-loader && "
			"tar -czf anon.tar.gz a b c d-loader",
			q, assets.disk, assets.kernel, assets.initrd, assets.kernel);
	source = vmi_test_open (&vmi_uec_plugin, path, NULL);
	info = vmi_source_get_info (source);
	g_assert_cmpuint (info->members->len, ==, 4);
	g_assert_cmpstr (((VmiMember *) g_ptr_array_index (info->members, 0))->role, ==, "disk");
	g_assert_cmpstr (((VmiMember *) g_ptr_array_index (info->members, 1))->role, ==, "kernel");
	g_assert_cmpstr (((VmiMember *) g_ptr_array_index (info->members, 2))->role, ==, "ramdisk");
	g_assert_cmpstr (((VmiMember *) g_ptr_array_index (info->members, 3))->role, ==, "kernel");
	g_assert_true (g_variant_dict_lookup (((VmiMember *) g_ptr_array_index (info->members, 3))->facts,
					      "loader", "b", &loader));
	g_assert_true (loader);
	/* The named kernel is preferred to the loader. */
	g_assert_cmpstr (vmi_test_fact_string (source, "kernel"), ==, "b");
}

/* More members than a UEC tarball could need, and a name longer than PATH_MAX: refused. */
static void
test_limits (Fixture *f, gconstpointer data)
{
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree char *many = g_build_filename (f->dir, "many.tar.gz", NULL);
	g_autofree char *lng = g_build_filename (f->dir, "long.tar.gz", NULL);
	g_autofree char *message = NULL;
	g_autoptr(GString) name = g_string_new (NULL);

	vmi_test_sh_ok ("cd %s && mkdir m && cd m && seq 1 1100 | xargs touch && "
			"tar -czf ../many.tar.gz *", q);
	message = vmi_test_open_error (&vmi_uec_plugin, many, VMI_ERROR_UNSAFE_IMAGE);
	g_assert_nonnull (strstr (message, "more than 1024 members"));
	for (guint i = 0; i < 2100; i++)
		g_string_append (name, "a/");
	vmi_test_sh_ok ("cd %s && echo hi > x && cp %s disk.img && "
			"tar -czf long.tar.gz --transform 's,^x$,%sx,' disk.img x",
			q, assets.readme, name->str);
	g_clear_pointer (&message, g_free);
	message = vmi_test_open_error (&vmi_uec_plugin, lng, VMI_ERROR_UNSAFE_IMAGE);
	g_assert_nonnull (strstr (message, "4201-byte name"));
}

/* GNU tar --sparse: the holes of the disk are not stored, and read back as zeros. */
static void
test_sparse (Fixture *f, gconstpointer data)
{
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree char *path = g_build_filename (f->dir, "sparse.tar.gz", NULL);
	g_autofree char *disk = g_build_filename (f->dir, "sparse.img", NULL);
	g_autofree char *raw = g_build_filename (f->dir, "out.raw", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GVariant) members = NULL, entry = NULL;
	gboolean sparse = FALSE;

	/* Data at the start, in the middle and in the last partial block; holes between. */
	vmi_test_sh_ok ("cd %s && truncate -s 9M sparse.img && "
			"head -c 70000 /dev/urandom | dd of=sparse.img conv=notrunc status=none && "
			"head -c 5000 /dev/urandom | dd of=sparse.img bs=4096 seek=1000 conv=notrunc status=none && "
			"truncate -s +777 sparse.img && "
			"printf end | dd of=sparse.img bs=1 seek=$((9 * 1048576 + 770)) conv=notrunc status=none && "
			"echo readme > " README_NAME " && "
			"tar -cSzf sparse.tar.gz --format=%s sparse.img " README_NAME,
			q, (const char *) data);
	source = vmi_test_open (&vmi_uec_plugin, path, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, vmi_test_file_size (disk));
	members = g_variant_dict_lookup_value (vmi_source_get_info (source)->format_specific, "members",
					       G_VARIANT_TYPE ("aa{sv}"));
	entry = member_fact (members, "sparse.img");
	g_assert_nonnull (entry);
	g_assert_true (g_variant_lookup (entry, "sparse", "b", &sparse));
	g_assert_true (sparse);
	bytes = read_whole_member (source, 0, 100000);
	assert_bytes_equal_file (bytes, disk);
	g_assert_true (vmi_test_convert_source (source, &vmi_raw_plugin, raw, NULL, NULL));
	g_assert_cmpuint (vmi_test_file_size (raw), ==, vmi_test_file_size (disk));
	vmi_test_sh_ok ("cmp %s %s", disk, raw);
	vmi_test_save_seed ("uec", path);
}

int
main (int argc, char **argv)
{
	int status;

	g_test_init (&argc, &argv, NULL);
	prepare_assets ();
	g_test_add_func ("/uec/inspect", test_inspect);
	g_test_add_func ("/uec/debian-kernel", test_debian_kernel);
	g_test_add_func ("/uec/read-member", test_read_member);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD ("/uec/convert", test_convert);
	ADD ("/uec/detect", test_detect);
	ADD ("/uec/hostile", test_hostile);
	ADD ("/uec/gzip-bomb", test_gzip_bomb);
	ADD ("/uec/truncated", test_truncated);
	ADD ("/uec/no-disk", test_no_disk);
	ADD ("/uec/roles", test_roles);
	ADD ("/uec/limits", test_limits);
	g_test_add ("/uec/sparse/gnu", Fixture, "gnu", fixture_set_up, test_sparse, fixture_tear_down);
	g_test_add ("/uec/sparse/pax", Fixture, "pax", fixture_set_up, test_sparse, fixture_tear_down);
	status = g_test_run ();
	g_clear_object (&assets.registry);
	vmi_test_tmpdir_free (assets.dir);
	g_free (assets.disk);
	g_free (assets.kernel);
	g_free (assets.initrd);
	g_free (assets.readme);
	g_free (assets.tarball);
	g_free (assets.kernel_origin);
	return status;
}
