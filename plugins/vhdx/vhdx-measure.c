/*
 * VHDX measure: the exact size of the file our writer (vhdx-writer.c) makes, since qemu-img has
 * no measure for vhdx: 1 MiB of headers, the 1 MiB log, the BAT rounded up to a MiB, 1 MiB of
 * metadata, then one payload block per block that holds data (dynamic; required) or per block of
 * the disk (fixed, and fully_allocated). The writer leaves a block unallocated when all the data
 * given for it is zeros, so its file may be smaller than required, never larger.
 */
#include "vhdx-measure.h"
#include "vhdx-private.h"
#include "vmi-measure.h"

/* The writer's default, which is qemu-img's. */
static guint64
default_block_size (guint64 size)
{
	if (size > 32 * VHDX_TiB)
		return 64 * VHDX_MiB;
	if (size > 100ull * 1024 * VHDX_MiB)
		return 32 * VHDX_MiB;
	if (size > 1024 * VHDX_MiB)
		return 16 * VHDX_MiB;
	return 8 * VHDX_MiB;
}

gboolean
vhdx_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
	      VmiMeasurement *out, GError **error)
{
	const char *subformat = "dynamic";
	guint64 block_size = 0, size, chunk_ratio, blocks, bat_length, used, head;

	if (options != NULL) {
		g_variant_lookup (options, "subformat", "&s", &subformat);
		g_variant_lookup (options, "block-size", "t", &block_size);
	}
	if (g_strcmp0 (subformat, "dynamic") != 0 && g_strcmp0 (subformat, "fixed") != 0)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "VHDX subformat \"%s\" is unknown; use \"dynamic\" or \"fixed\"",
				    subformat),
		       FALSE;
	if (virtual_size > VHDX_MAX_VIRTUAL_SIZE)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "A VHDX disk can be at most 64 TiB, not %" G_GUINT64_FORMAT " bytes",
				    virtual_size),
		       FALSE;
	size = (virtual_size + 511) / 512 * 512;
	if (block_size == 0)
		block_size = default_block_size (size);
	if (block_size < VHDX_BLOCK_SIZE_MIN || block_size > VHDX_BLOCK_SIZE_MAX ||
	    (block_size & (block_size - 1)) != 0)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "VHDX block-size %" G_GUINT64_FORMAT
				    " is not a power of two between 1 MiB and 256 MiB",
				    block_size),
		       FALSE;
	if (!vmi_measure_count_units (virtual_size, data, n_data, block_size, &used, error))
		return FALSE;
	chunk_ratio = VHDX_SECTORS_PER_CHUNK * 512 / block_size;
	blocks = (size + block_size - 1) / block_size;
	/* As the writer: an empty disk still gets the BAT region qemu insists on. */
	bat_length = vhdx_bat_entries_no_parent (blocks, chunk_ratio) * 8;
	/* The writer keeps the BAT in memory, within this cap. */
	if (bat_length > VHDX_METADATA_MEMORY_CAP)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "A %" G_GUINT64_FORMAT "-byte VHDX with %" G_GUINT64_FORMAT
				    "-byte blocks needs a %" G_GUINT64_FORMAT "-byte BAT; choose a "
				    "larger block-size",
				    size, block_size, bat_length),
		       FALSE;
	if (blocks == 0)
		bat_length = (guint64) G_MAXUINT32 / chunk_ratio * 8;
	bat_length = MAX ((bat_length + VHDX_MiB - 1) / VHDX_MiB * VHDX_MiB, VHDX_MiB);
	head = VHDX_HEADER_SECTION_SIZE + VHDX_MiB /* log */ + bat_length + VHDX_MiB /* metadata */;
	out->fully_allocated = head + blocks * block_size;
	out->required = g_strcmp0 (subformat, "fixed") == 0 ? out->fully_allocated
							    : head + used * block_size;
	return TRUE;
}
