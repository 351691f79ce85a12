/*
 * The conversion engine: a bounded pipeline driven by the source's block status.
 *
 * A reader thread walks the source's extents, reads its data in chunks into a small ring of
 * buffers and marks which granules of each chunk are all zeros; the calling thread takes the
 * chunks in order and hands the non-zero runs to the destination plugin (which may compress on
 * its own pool of threads). Reading, zero detection and writing overlap, and memory stays at
 * VMI_CONVERT_RING chunks whatever the image size. Holes and zero extents never reach a buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "vmi-convert.h"
#include "vmi-convert-private.h"
#include "vmi-members.h"
#include "vmi-options.h"
#include "vmi-priority.h"

/* Bytes read from the source per call: large enough for sequential I/O, small enough to cancel
 * promptly. Chunks never cross a multiple of this on the virtual disk, so reads are aligned. */
#define VMI_CONVERT_CHUNK (4u * 1024u * 1024u)
/* Buffers between the reader and the writer: the engine's whole memory for data. */
#define VMI_CONVERT_RING 4u
/* All-zero runs of data are looked for at this granularity and not written. A chunk holds at
 * most 64 of them, one bit each in VmiConvertItem.nonzero. */
#define VMI_CONVERT_ZERO_GRANULE (64u * 1024u)
/* The destination gets data in pieces of at most this much, with a look at the cancellable
 * between them: a compressing writer takes tens of milliseconds per MiB. */
#define VMI_CONVERT_WRITE_SLICE (1024u * 1024u)

G_STATIC_ASSERT (VMI_CONVERT_CHUNK / VMI_CONVERT_ZERO_GRANULE <= 64);

const VmiOptionSpec vmi_convert_options[] = {
	{ "source-format", "s", "format of the source; detected when absent" },
	{ "overwrite", "b", "replace an existing destination" },
	{ "cancel-on-disconnect", "b", "cancel the job when its caller leaves the bus" },
	{ "disk", "t", "the disk of a container (OVA, OVF) to convert, counted from 0; default 0" },
	{ "member", "s", "the member of a container to convert, by name or role (\"kernel\")" },
	{ VMI_PRIORITY_OPTION, "s", VMI_PRIORITY_OPTION_DESCRIPTION },
	{ NULL },
};

gboolean
vmi_convert_is_zero (const guint8 *buf, gsize len)
{
	/* Compare the buffer with itself shifted: one pass at memcmp speed, no zero page needed. */
	if (len < 16) {
		for (gsize i = 0; i < len; i++) {
			if (buf[i] != 0)
				return FALSE;
		}
		return TRUE;
	}
	for (gsize i = 0; i < 16; i++) {
		if (buf[i] != 0)
			return FALSE;
	}
	return memcmp (buf, buf + 16, len - 16) == 0;
}

gboolean
vmi_convert_check_cancelled (GCancellable *cancellable, GError **error)
{
	if (!g_cancellable_is_cancelled (cancellable))
		return FALSE;
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "the conversion was cancelled");
	return TRUE;
}

/* One chunk on its way from the reader to the writer. */
typedef struct {
	guint64 offset;	 /* on the virtual disk */
	gsize len;	 /* 0 for an item that only carries progress */
	guint8 *buf;	 /* from the ring; NULL when len is 0 */
	guint64 nonzero; /* bit i: granule i of the chunk (counted from its aligned start) has data */
	guint64 done;	 /* once this item is written, the disk before done is converted */
	gboolean last;	 /* the reader's final item; error says why it stopped early */
	GError *error;
} VmiConvertItem;

typedef struct {
	VmiSource *source;
	GCancellable *cancellable;
	int readahead_fd; /* the source's file when its bytes are the disk's (raw), else -1 */
	GAsyncQueue *free_buffers;
	GAsyncQueue *items;
	gint stop;		/* atomic: the writer failed; the reader ends */
	gint progress_pending;	/* atomic: a progress-only item is queued */
} VmiConvertPipeline;

static void
vmi_convert_item_free (VmiConvertItem *item)
{
	g_clear_error (&item->error);
	g_free (item);
}

/* The granules of buf that hold something other than zeros. */
static guint64
vmi_convert_nonzero_granules (guint64 offset, const guint8 *buf, gsize len)
{
	guint64 base = offset - offset % VMI_CONVERT_ZERO_GRANULE;
	guint64 mask = 0;
	gsize pos = 0;

	while (pos < len) {
		guint64 abs = offset + pos;
		gsize granule = MIN (len - pos,
				     VMI_CONVERT_ZERO_GRANULE - abs % VMI_CONVERT_ZERO_GRANULE);

		if (!vmi_convert_is_zero (buf + pos, granule))
			mask |= G_GUINT64_CONSTANT (1) << ((abs - base) / VMI_CONVERT_ZERO_GRANULE);
		pos += granule;
	}
	return mask;
}

static void
vmi_convert_push (VmiConvertPipeline *self, VmiConvertItem *item)
{
	g_async_queue_push (self->items, item);
}

static void
vmi_convert_push_progress (VmiConvertPipeline *self, guint64 done)
{
	VmiConvertItem *item;

	/* At most one waits at a time: a huge sparse disk must not fill the queue with them. */
	if (!g_atomic_int_compare_and_exchange (&self->progress_pending, 0, 1))
		return;
	item = g_new0 (VmiConvertItem, 1);
	item->done = done;
	vmi_convert_push (self, item);
}

/* Reads the data extent [offset, end) chunk by chunk into the ring. */
static gboolean
vmi_convert_read_extent (VmiConvertPipeline *self, guint64 offset, guint64 end, GError **error)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (self->source);
	VmiImage *image = vmi_source_get_image (self->source);

	while (offset < end) {
		guint64 boundary = (offset / VMI_CONVERT_CHUNK + 1) * VMI_CONVERT_CHUNK;
		gsize len = (gsize) (MIN (end, boundary) - offset);
		VmiConvertItem *item;
		guint8 *buf;

		if (self->readahead_fd >= 0 && MIN (end, boundary) < end)
			(void) posix_fadvise (self->readahead_fd, (off_t) (offset + len),
					      (off_t) MIN (end - offset - len, VMI_CONVERT_CHUNK),
					      POSIX_FADV_WILLNEED);
		buf = g_async_queue_pop (self->free_buffers);
		if (g_atomic_int_get (&self->stop) ||
		    vmi_convert_check_cancelled (self->cancellable, error)) {
			g_async_queue_push (self->free_buffers, buf);
			return FALSE;
		}
		if (!plugin->read (image, offset, buf, len, error)) {
			g_async_queue_push (self->free_buffers, buf);
			return FALSE;
		}
		item = g_new0 (VmiConvertItem, 1);
		item->offset = offset;
		item->len = len;
		item->buf = buf;
		item->nonzero = vmi_convert_nonzero_granules (offset, buf, len);
		item->done = offset + len;
		vmi_convert_push (self, item);
		offset += len;
	}
	return TRUE;
}

/* Hole and zero extents cost no buffer: progress items report them, sparingly. */
#define VMI_CONVERT_PROGRESS_STEP (64u * 1024u * 1024u)

static gpointer
vmi_convert_reader_thread (gpointer user_data)
{
	VmiConvertPipeline *self = user_data;
	guint64 total = vmi_source_get_virtual_size (self->source);
	guint64 offset = 0, reported = 0;
	VmiConvertItem *last = g_new0 (VmiConvertItem, 1);

	last->last = TRUE;
	while (offset < total) {
		VmiExtent extent;

		if (g_atomic_int_get (&self->stop) ||
		    vmi_convert_check_cancelled (self->cancellable, &last->error))
			break;
		if (!vmi_source_block_status (self->source, offset, total - offset, &extent,
					      &last->error))
			break;
		if (extent.kind != VMI_EXTENT_DATA) {
			/* A new image reads as zeros: holes and zero runs need nothing written. */
			offset += extent.length;
			if (offset - reported >= VMI_CONVERT_PROGRESS_STEP) {
				vmi_convert_push_progress (self, offset);
				reported = offset;
			}
			continue;
		}
		if (!vmi_convert_read_extent (self, offset, offset + extent.length, &last->error))
			break;
		offset += extent.length;
		reported = offset;
	}
	last->done = offset;
	vmi_convert_push (self, last);
	return NULL;
}

/*
 * The job makes the output durable (fsync) before it publishes it. Starting the writeback as
 * the data comes, instead of all of it in that fsync, lets the disk work while the engine
 * reads and compresses: the final fsync only waits for the tail.
 */
#define VMI_CONVERT_WRITEBACK_STEP (32u * 1024u * 1024u)

static void
vmi_convert_writeback_kick (VmiConvertDest *dest, gsize written)
{
	dest->unflushed += written;
	if (dest->unflushed < VMI_CONVERT_WRITEBACK_STEP)
		return;
	dest->unflushed = 0;
	/* Asynchronous, for the whole file (the plugin decides where data lands); a file that
	 * cannot (ESPIPE, EINVAL) is simply not hinted. */
	(void) sync_file_range (dest->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* Whether the granule of the chunk at pos (bytes from its start) holds data. */
static gboolean
vmi_convert_item_has_data (const VmiConvertItem *item, gsize pos)
{
	guint64 base = item->offset - item->offset % VMI_CONVERT_ZERO_GRANULE;

	return (item->nonzero >> ((item->offset + pos - base) / VMI_CONVERT_ZERO_GRANULE)) & 1;
}

/* Where the granule of the chunk at pos ends, within the chunk. */
static gsize
vmi_convert_item_granule_end (const VmiConvertItem *item, gsize pos)
{
	guint64 abs = item->offset + pos;

	return MIN (item->len, pos + (VMI_CONVERT_ZERO_GRANULE - abs % VMI_CONVERT_ZERO_GRANULE));
}

/* Writes the granules of the chunk that hold data, in slices, looking at the cancellable. */
static gboolean
vmi_convert_write_item (VmiConvertDest *dest, const VmiConvertItem *item,
			GCancellable *cancellable, GError **error)
{
	gsize pos = 0;

	while (pos < item->len) {
		gsize start;

		if (!vmi_convert_item_has_data (item, pos)) {
			pos = vmi_convert_item_granule_end (item, pos);
			continue;
		}
		start = pos;
		while (pos < item->len && pos - start < VMI_CONVERT_WRITE_SLICE &&
		       vmi_convert_item_has_data (item, pos))
			pos = vmi_convert_item_granule_end (item, pos);
		if (vmi_convert_check_cancelled (cancellable, error))
			return FALSE;
		if (!dest->plugin->write (dest->image, item->offset + start, item->buf + start,
					  pos - start, error))
			return FALSE;
		vmi_convert_writeback_kick (dest, pos - start);
	}
	return TRUE;
}

static guint8 *
vmi_convert_buffer_new (void)
{
	/* mmap, not malloc: page-aligned, and given back to the system when the job ends instead
	 * of staying in a malloc arena for the life of the daemon. */
	void *buf = mmap (NULL, VMI_CONVERT_CHUNK, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return buf == MAP_FAILED ? NULL : buf;
}

static void
vmi_convert_buffer_free (gpointer buf)
{
	munmap (buf, VMI_CONVERT_CHUNK);
}

static gboolean
vmi_convert_pipeline (VmiSource *source, VmiConvertDest *dest, VmiProgressFunc progress,
		      gpointer user_data, GCancellable *cancellable, GError **error)
{
	VmiConvertPipeline self = {
		.source = source,
		.cancellable = cancellable,
		.readahead_fd = vmi_convert_raw_source_fd (source),
	};
	guint64 total = vmi_source_get_virtual_size (source);
	g_autoptr(GError) local_error = NULL;
	GThread *reader;
	gboolean failed = FALSE;

	if (progress != NULL)
		progress (0, total, user_data);
	self.free_buffers = g_async_queue_new_full (vmi_convert_buffer_free);
	self.items = g_async_queue_new_full ((GDestroyNotify) vmi_convert_item_free);
	for (guint i = 0; i < VMI_CONVERT_RING; i++) {
		guint8 *buf = vmi_convert_buffer_new ();

		if (buf == NULL) {
			g_async_queue_unref (self.free_buffers);
			g_async_queue_unref (self.items);
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "Cannot allocate the conversion's buffers: %s",
				     g_strerror (errno));
			return FALSE;
		}
		g_async_queue_push (self.free_buffers, buf);
	}
	if (self.readahead_fd >= 0)
		(void) posix_fadvise (self.readahead_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	reader = g_thread_try_new ("vmi-convert-read", vmi_convert_reader_thread, &self,
				   &local_error);
	if (reader == NULL) {
		g_async_queue_unref (self.items);
		g_async_queue_unref (self.free_buffers);
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "Cannot start the reader thread: %s",
			     local_error->message);
		return FALSE;
	}

	/* The writer: items in order until the reader's last one, even after a failure (the
	 * reader may wait for a buffer that only this loop gives back). */
	for (;;) {
		VmiConvertItem *item = g_async_queue_pop (self.items);

		if (item->last) {
			if (!failed && item->error != NULL) {
				g_propagate_error (&local_error, g_steal_pointer (&item->error));
				failed = TRUE;
			}
			/* The holes after the last data. */
			if (!failed && progress != NULL)
				progress (item->done, total, user_data);
			vmi_convert_item_free (item);
			break;
		}
		if (item->buf == NULL)
			g_atomic_int_set (&self.progress_pending, 0);
		if (!failed && item->buf != NULL &&
		    !vmi_convert_write_item (dest, item, cancellable, &local_error)) {
			failed = TRUE;
			g_atomic_int_set (&self.stop, 1);
		}
		if (!failed && progress != NULL)
			progress (item->done, total, user_data);
		if (item->buf != NULL)
			g_async_queue_push (self.free_buffers, g_steal_pointer (&item->buf));
		vmi_convert_item_free (item);
	}
	g_thread_join (reader);
	g_async_queue_unref (self.items);
	g_async_queue_unref (self.free_buffers);
	if (failed) {
		g_propagate_error (error, g_steal_pointer (&local_error));
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_convert (VmiSource *source, const VmiFormatPlugin *dst_plugin, int dst_fd, GVariant *options,
	     VmiProgressFunc progress, gpointer user_data, GCancellable *cancellable,
	     GError **error)
{
	g_autoptr(GVariant) normalized = NULL;
	g_autoptr(GVariant) create_options = NULL;
	VmiConvertDest dest = { .plugin = dst_plugin, .fd = dst_fd };
	g_autoptr(GVariant) choice = NULL;
	g_autoptr(VmiSource) member = NULL;
	gboolean cloned = FALSE;
	gboolean ok;

	/* A container's member is converted in its place (options "disk" and "member"). */
	choice = vmi_options_normalize (options, vmi_convert_options, dst_plugin->create_options,
					error);
	if (choice == NULL ||
	    !vmi_members_open_chosen (source, choice, &member, cancellable, error))
		return FALSE;
	if (member != NULL)
		source = member;
	if ((vmi_source_get_plugin (source)->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can inspect %s images but not read their content",
			     vmi_source_get_plugin (source)->name);
		return FALSE;
	}
	if ((dst_plugin->flags & VMI_FORMAT_CAN_WRITE) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged cannot write %s images", dst_plugin->name);
		return FALSE;
	}
	normalized = vmi_options_normalize (options, vmi_convert_options,
					    dst_plugin->create_options, error);
	if (normalized == NULL)
		return FALSE;
	create_options = vmi_options_filter (normalized, vmi_convert_options);
	dest.image = dst_plugin->create (dst_fd, vmi_source_get_virtual_size (source),
					 create_options, error);
	if (dest.image == NULL)
		return FALSE;
	ok = vmi_convert_raw_clone (source, dst_plugin, dst_fd, &cloned, error);
	if (ok && cloned && progress != NULL)
		progress (vmi_source_get_virtual_size (source), vmi_source_get_virtual_size (source),
			  user_data);
	if (ok && !cloned)
		ok = vmi_convert_pipeline (source, &dest, progress, user_data, cancellable, error);
	ok = ok && !vmi_convert_check_cancelled (cancellable, error) &&
	     dst_plugin->finish (dest.image, error);
	dst_plugin->close (dest.image);
	return ok;
}
