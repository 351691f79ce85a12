/*
 * qcow2: qemu's copy-on-write format, versions 2 and 3 (docs/interop/qcow2.txt in qemu).
 *
 * The reader (qcow2-header.c, qcow2-reader.c) describes and reads images; the writer
 * (qcow2-writer.c) makes version 3 images. This file is the plugin table and the probe.
 */
#define G_LOG_DOMAIN "vmimaged-qcow2"

#include "qcow2-private.h"
#include "qcow2-check.h"

struct _VmiImage {
	Qcow2Reader *reader; /* exactly one of these is set */
	Qcow2Writer *writer;
};

static guint
qcow2_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	guint32 version;

	if (head_len < 8 || qcow2_be32 (head) != QCOW2_MAGIC)
		return VMI_PROBE_NO;
	version = qcow2_be32 (head + QCOW2_HDR_VERSION);
	/* Version 1 (qcow) shares the magic: claim it so that open can say it is unsupported. */
	return version == 2 || version == 3 ? VMI_PROBE_CERTAIN : VMI_PROBE_LIKELY;
}

static VmiImage *
qcow2_open (const VmiOpenArgs *args, GError **error)
{
	Qcow2Reader *reader = qcow2_reader_open (args, error);
	VmiImage *image;

	if (reader == NULL)
		return NULL;
	image = g_new0 (VmiImage, 1);
	image->reader = reader;
	return image;
}

static gboolean
qcow2_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	return qcow2_reader_get_info (image->reader, info, error);
}

static gboolean
qcow2_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error)
{
	return qcow2_reader_read (image->reader, offset, buf, len, error);
}

static gboolean
qcow2_block_status (VmiImage *image, guint64 offset, guint64 max_length, VmiExtent *extent,
		    GError **error)
{
	return qcow2_reader_block_status (image->reader, offset, max_length, extent, error);
}

static gboolean
qcow2_check (VmiImage *image, VmiCheckResult *result, GCancellable *cancellable, GError **error)
{
	return qcow2_reader_check (image->reader, result, cancellable, error);
}

static void
qcow2_close (VmiImage *image)
{
	if (image == NULL)
		return;
	qcow2_reader_free (image->reader);
	qcow2_writer_free (image->writer);
	g_free (image);
}

static VmiImage *
qcow2_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	Qcow2Writer *writer = qcow2_writer_new (fd, virtual_size, options, error);
	VmiImage *image;

	if (writer == NULL)
		return NULL;
	image = g_new0 (VmiImage, 1);
	image->writer = writer;
	return image;
}

static gboolean
qcow2_write (VmiImage *image, guint64 offset, const void *buf, gsize len, GError **error)
{
	return qcow2_writer_write (image->writer, offset, buf, len, error);
}

static gboolean
qcow2_finish (VmiImage *image, GError **error)
{
	return qcow2_writer_finish (image->writer, error);
}

static const char *const qcow2_extensions[] = { "qcow2", "qcow", "qcow2c", NULL };

static const VmiOptionSpec qcow2_create_options[] = {
	{ "cluster-size", "t", "Cluster size in bytes: a power of two from 512 to 2097152 (default 65536)" },
	{ "compress", "b", "Deflate each cluster as qemu-img convert -c does (default false)" },
	{ NULL, NULL, NULL },
};

const VmiFormatPlugin vmi_qcow2_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "qcow2",
	.description = "QEMU copy-on-write disk image, versions 2 and 3",
	.extensions = qcow2_extensions,
	.aliases = NULL,
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_WRITE,
	.probe = qcow2_probe,
	.open = qcow2_open,
	.get_info = qcow2_get_info,
	.read = qcow2_read,
	.block_status = qcow2_block_status,
	.close = qcow2_close,
	.create_options = qcow2_create_options,
	.create = qcow2_create,
	.write = qcow2_write,
	.finish = qcow2_finish,
	.check = qcow2_check,
	.measure = qcow2_measure,
};

VMI_PLUGIN_DEFINE (vmi_qcow2_plugin)
