#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmdk-writer.h"
#include "vmi-ova-writer-tar.h"
#include "vmi-ova-writer.h"
#include "vmi-ovf-writer.h"
#include "vmi-plugin-util.h"

#define OVA_W_GRAIN (64u * 1024u) /* the VMDK writer's grain: populatedSize counts these */
#define OVA_W_HASH_CHUNK (1024u * 1024u)
#define OVA_W_MAX_OS_TYPE 64u

/* VMware guest ids and the CIM_OperatingSystem OsType (ovf:id, DSP0004) of the same system. */
static const struct {
	const char *guest_id;
	guint32 cim_id;
	const char *description;
} ova_os_types[] = {
	{ "otherGuest", 1, "Other" },
	{ "otherGuest64", 102, "Other 64-Bit" },
	{ "otherLinuxGuest", 36, "Linux" },
	{ "otherLinux64Guest", 101, "Linux 64-Bit" },
	{ "other26xLinuxGuest", 99, "Linux 2.6.x" },
	{ "other26xLinux64Guest", 100, "Linux 2.6.x 64-Bit" },
	{ "other3xLinux64Guest", 101, "Linux 64-Bit" },
	{ "other4xLinux64Guest", 101, "Linux 64-Bit" },
	{ "other5xLinux64Guest", 101, "Linux 64-Bit" },
	{ "debian10Guest", 95, "Debian" },
	{ "debian10_64Guest", 96, "Debian 64-Bit" },
	{ "debian11_64Guest", 96, "Debian 64-Bit" },
	{ "debian12_64Guest", 96, "Debian 64-Bit" },
	{ "ubuntuGuest", 93, "Ubuntu" },
	{ "ubuntu64Guest", 94, "Ubuntu 64-Bit" },
	{ "centosGuest", 106, "CentOS 32-bit" },
	{ "centos64Guest", 107, "CentOS 64-bit" },
	{ "rhel7_64Guest", 80, "Red Hat Enterprise Linux 64-Bit" },
	{ "rhel8_64Guest", 80, "Red Hat Enterprise Linux 64-Bit" },
	{ "rhel9_64Guest", 80, "Red Hat Enterprise Linux 64-Bit" },
	{ "sles15_64Guest", 85, "SLES 64-Bit" },
	{ "freebsdGuest", 42, "FreeBSD" },
	{ "freebsd64Guest", 78, "FreeBSD 64-Bit" },
	{ "windows7Guest", 105, "Microsoft Windows 7" },
	{ "windows7_64Guest", 105, "Microsoft Windows 7" },
};

struct _VmiOvaWriter {
	int fd;
	char *name;
	char *ovf_name, *vmdk_name, *mf_name;
	char *os_type;
	VmiOvfWriterParams params; /* its strings point into this struct */
	gint64 mtime;
	guint64 ovf_room;    /* bytes of the descriptor member: room for the longest numbers */
	guint64 vmdk_header; /* file offset of the VMDK's tar header */
	guint64 vmdk_base;   /* and of its first byte */
	VmdkWriter *vmdk;
	guint64 next_grain;  /* first grain not yet counted as populated */
	guint64 populated_grains;
};

void
vmi_ova_writer_free (VmiOvaWriter *self)
{
	if (self == NULL)
		return;
	vmdk_writer_free (self->vmdk);
	g_free (self->name);
	g_free (self->ovf_name);
	g_free (self->vmdk_name);
	g_free (self->mf_name);
	g_free (self->os_type);
	g_free (self);
}

/* The name becomes file names in every importer's folder: nothing a path could be made of. */
static gboolean
ova_writer_check_name (const char *name, GError **error)
{
	g_autofree char *shown = NULL;
	const char *why = NULL;
	char high[129];

	if (name[0] == '\0')
		why = "it is empty";
	else if (strlen (name) > VMI_OVA_WRITER_MAX_NAME)
		why = "it is longer than 80 bytes";
	else if (strchr (name, '/') != NULL || strchr (name, '\\') != NULL)
		why = "it has a '/' or '\\'";
	else if (name[0] == '.')
		why = "it starts with '.' (a hidden file)";
	else if (strstr (name, "..") != NULL)
		why = "it has \"..\"";
	for (const char *c = name; why == NULL && *c != '\0'; c++) {
		if ((guchar) *c < 0x20 || *c == 0x7f)
			why = "it has control characters";
	}
	if (why == NULL)
		return TRUE;
	/* Control characters escaped, UTF-8 as it is. */
	for (guint i = 0; i < 128; i++)
		high[i] = (char) (0x80 + i);
	high[128] = '\0';
	shown = g_strescape (name, high);
	g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
		     "the OVA option name \"%s\" cannot name the VM and its files: %s", shown, why);
	return FALSE;
}

static gboolean
ova_writer_set_os_type (VmiOvaWriter *self, const char *os_type, GError **error)
{
	gsize len = strlen (os_type);

	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isalnum (os_type[i]) && os_type[i] != '_')
			len = 0;
	}
	if (len == 0 || len > OVA_W_MAX_OS_TYPE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the OVA option os-type \"%s\" is not a VMware guest id (1 to %u "
			     "letters, digits or '_', like otherGuest or ubuntu64Guest)",
			     os_type, OVA_W_MAX_OS_TYPE);
		return FALSE;
	}
	self->os_type = g_strdup (os_type);
	self->params.os_type = self->os_type;
	/* Outside the table: CIM "Other", with the exact guest id in vmw:osType. */
	self->params.os_id = 1;
	self->params.os_description = self->os_type;
	for (gsize i = 0; i < G_N_ELEMENTS (ova_os_types); i++) {
		if (g_ascii_strcasecmp (os_type, ova_os_types[i].guest_id) == 0) {
			self->params.os_id = ova_os_types[i].cim_id;
			self->params.os_description = ova_os_types[i].description;
		}
	}
	return TRUE;
}

static gboolean
ova_writer_parse_options (VmiOvaWriter *self, GVariant *options, GError **error)
{
	const char *name = "vm", *os_type = "otherGuest", *firmware = "bios";
	guint64 cpus = 1, memory = 1024;

	if (options != NULL) {
		g_variant_lookup (options, "name", "&s", &name);
		g_variant_lookup (options, "cpus", "t", &cpus);
		g_variant_lookup (options, "memory-mib", "t", &memory);
		g_variant_lookup (options, "os-type", "&s", &os_type);
		g_variant_lookup (options, "firmware", "&s", &firmware);
	}
	if (!ova_writer_check_name (name, error))
		return FALSE;
	if (cpus == 0 || cpus > VMI_OVA_WRITER_MAX_CPUS) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the OVA option cpus is %" G_GUINT64_FORMAT "; a VM has 1 to %u CPUs",
			     cpus, VMI_OVA_WRITER_MAX_CPUS);
		return FALSE;
	}
	if (memory < VMI_OVA_WRITER_MIN_MEMORY_MIB || memory > VMI_OVA_WRITER_MAX_MEMORY_MIB) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the OVA option memory-mib is %" G_GUINT64_FORMAT "; a VM has %u to %u "
			     "MiB of memory",
			     memory, VMI_OVA_WRITER_MIN_MEMORY_MIB, VMI_OVA_WRITER_MAX_MEMORY_MIB);
		return FALSE;
	}
	if (strcmp (firmware, "bios") != 0 && strcmp (firmware, "efi") != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the OVA option firmware is \"%s\"; it is bios or efi", firmware);
		return FALSE;
	}
	if (!ova_writer_set_os_type (self, os_type, error))
		return FALSE;
	self->name = g_strdup (name);
	self->ovf_name = g_strdup_printf ("%s.ovf", name);
	self->vmdk_name = g_strdup_printf ("%s-disk1.vmdk", name);
	self->mf_name = g_strdup_printf ("%s.mf", name);
	self->params.name = self->name;
	self->params.cpus = cpus;
	self->params.memory_mib = memory;
	self->params.efi = strcmp (firmware, "efi") == 0;
	self->params.disk_href = self->vmdk_name;
	return TRUE;
}

static gboolean
ova_writer_put_header (VmiOvaWriter *self, const char *name, guint64 size, guint64 offset,
		       GError **error)
{
	guint8 block[VMI_OVA_TAR_BLOCK];

	return vmi_ova_tar_header (block, name, size, self->mtime, error) &&
	       vmi_pwrite_all (self->fd, block, sizeof block, offset, "OVA archive", error);
}

static gboolean
ova_writer_truncate (VmiOvaWriter *self, guint64 size, GError **error)
{
	if (ftruncate (self->fd, (off_t) size) != 0) {
		int errsv = errno;

		g_set_error (error, VMI_ERROR,
			     errsv == ENOSPC || errsv == EDQUOT ? VMI_ERROR_NO_SPACE : VMI_ERROR_FAILED,
			     "cannot size the OVA file to %" G_GUINT64_FORMAT " bytes: %s", size,
			     g_strerror (errsv));
		return FALSE;
	}
	return TRUE;
}

VmiOvaWriter *
vmi_ova_writer_new (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	g_autoptr(VmiOvaWriter) self = g_new0 (VmiOvaWriter, 1);
	g_autofree char *widest = NULL;
	gsize widest_len = 0;

	self->fd = fd;
	self->mtime = g_get_real_time () / G_USEC_PER_SEC;
	if (!ova_writer_parse_options (self, options, error))
		return NULL;
	/* The VMDK holds whole sectors; the descriptor says what the VMDK holds. */
	self->params.disk_capacity = virtual_size / 512 * 512 + (virtual_size % 512 != 0 ? 512 : 0);
	if (self->params.disk_capacity < virtual_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a disk of %" G_GUINT64_FORMAT " bytes is too large for a VMDK",
			     virtual_size);
		return NULL;
	}
	/* The descriptor's room: what it takes with the VMDK's size and data at their widest. */
	self->params.disk_file_size = G_MAXUINT64;
	self->params.disk_populated = G_MAXUINT64;
	widest = vmi_ovf_writer_build (&self->params, &widest_len, error);
	if (widest == NULL)
		return NULL;
	self->ovf_room = widest_len;
	self->vmdk_header = VMI_OVA_TAR_BLOCK + vmi_ova_tar_padded (self->ovf_room);
	self->vmdk_base = self->vmdk_header + VMI_OVA_TAR_BLOCK;
	/* The VMDK's header is a placeholder (size 0) until finish knows the size. */
	if (!ova_writer_put_header (self, self->ovf_name, self->ovf_room, 0, error) ||
	    !ova_writer_put_header (self, self->vmdk_name, 0, self->vmdk_header, error))
		return NULL;
	self->vmdk = vmdk_writer_new_at (fd, self->vmdk_base, virtual_size, "streamOptimized",
					 "lsilogic", self->vmdk_name, error);
	if (self->vmdk == NULL)
		return NULL;
	return g_steal_pointer (&self);
}

gboolean
vmi_ova_writer_write (VmiOvaWriter *self, guint64 offset, const void *buf, gsize len,
		      GError **error)
{
	guint64 first, end;

	if (!vmdk_writer_write (self->vmdk, offset, buf, len, error))
		return FALSE;
	if (len == 0)
		return TRUE;
	/* The VMDK writer took the range, so it lies within the disk and adds up. */
	first = offset / OVA_W_GRAIN;
	end = (offset + len - 1) / OVA_W_GRAIN + 1;
	/* Writes come in increasing order, so a grain is counted when it is first written. */
	if (end > self->next_grain) {
		self->populated_grains += end - MAX (first, self->next_grain);
		self->next_grain = end;
	}
	return TRUE;
}

/* The SHA256 of bytes [offset, offset + size) of the file, as lower-case hex. */
static char *
ova_writer_sha256 (int fd, guint64 offset, guint64 size, GError **error)
{
	g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
	g_autofree guint8 *buf = g_malloc (OVA_W_HASH_CHUNK);

	for (guint64 done = 0; done < size;) {
		gsize n = (gsize) MIN ((guint64) OVA_W_HASH_CHUNK, size - done);

		if (!vmi_pread_all (fd, buf, n, offset + done, "OVA being written", error))
			return NULL;
		g_checksum_update (checksum, buf, n);
		done += n;
	}
	return g_strdup (g_checksum_get_string (checksum));
}

/* The descriptor, now with the VMDK's size, blank-padded to exactly its room. */
static guint8 *
ova_writer_descriptor (VmiOvaWriter *self, GError **error)
{
	g_autofree char *xml = NULL;
	gsize len = 0;
	guint8 *room;

	xml = vmi_ovf_writer_build (&self->params, &len, error);
	if (xml == NULL)
		return NULL;
	while (len > 0 && (xml[len - 1] == '\n' || xml[len - 1] == ' '))
		len--;
	if (len + 1 > self->ovf_room) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "the OVF descriptor grew to %" G_GSIZE_FORMAT " bytes, beyond the %" G_GUINT64_FORMAT
			     " reserved for it",
			     len, self->ovf_room);
		return NULL;
	}
	/* Blanks after the root element are XML's own padding: every parser skips them. */
	room = g_malloc ((gsize) self->ovf_room);
	memcpy (room, xml, len);
	memset (room + len, ' ', (gsize) self->ovf_room - len);
	room[self->ovf_room - 1] = '\n';
	return room;
}

gboolean
vmi_ova_writer_finish (VmiOvaWriter *self, GError **error)
{
	g_autofree guint8 *ovf = NULL;
	g_autofree char *vmdk_sha = NULL;
	g_autofree char *mf = NULL;
	struct stat st;
	guint64 vmdk_size, mf_header, end;

	if (!vmdk_writer_finish (self->vmdk, error))
		return FALSE;
	if (fstat (self->fd, &st) != 0) {
		int errsv = errno;

		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "cannot stat the OVA being written: %s",
			     g_strerror (errsv));
		return FALSE;
	}
	if ((guint64) st.st_size < self->vmdk_base) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "the OVA being written is %" G_GUINT64_FORMAT " bytes, shorter than the "
			     "%" G_GUINT64_FORMAT " where its VMDK starts: something else truncated it",
			     (guint64) st.st_size, self->vmdk_base);
		return FALSE;
	}
	vmdk_size = (guint64) st.st_size - self->vmdk_base;
	if (!ova_writer_put_header (self, self->vmdk_name, vmdk_size, self->vmdk_header, error))
		return FALSE;
	/* Read back rather than hashed as written: the VMDK writer leaves the gaps after its
	 * descriptor as holes and writes its grains from threads. */
	vmdk_sha = ova_writer_sha256 (self->fd, self->vmdk_base, vmdk_size, error);
	if (vmdk_sha == NULL)
		return FALSE;

	self->params.disk_file_size = vmdk_size;
	self->params.disk_populated = MIN (self->populated_grains * OVA_W_GRAIN,
					   self->params.disk_capacity);
	ovf = ova_writer_descriptor (self, error);
	if (ovf == NULL ||
	    !vmi_pwrite_all (self->fd, ovf, (gsize) self->ovf_room, VMI_OVA_TAR_BLOCK, "OVA archive",
			     error))
		return FALSE;

	{
		g_autofree char *ovf_sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, ovf,
									 (gsize) self->ovf_room);

		mf = g_strdup_printf ("SHA256(%s)= %s\nSHA256(%s)= %s\n", self->ovf_name, ovf_sha,
				      self->vmdk_name, vmdk_sha);
	}
	mf_header = self->vmdk_base + vmi_ova_tar_padded (vmdk_size);
	if (!ova_writer_put_header (self, self->mf_name, strlen (mf), mf_header, error) ||
	    !vmi_pwrite_all (self->fd, mf, strlen (mf), mf_header + VMI_OVA_TAR_BLOCK, "OVA archive",
			     error))
		return FALSE;
	/* Two zero blocks end the archive; the file is whole records of zeros after them. */
	end = mf_header + VMI_OVA_TAR_BLOCK + vmi_ova_tar_padded (strlen (mf)) + 2 * VMI_OVA_TAR_BLOCK;
	end = (end + VMI_OVA_TAR_RECORD - 1) / VMI_OVA_TAR_RECORD * VMI_OVA_TAR_RECORD;
	return ova_writer_truncate (self, end, error);
}
