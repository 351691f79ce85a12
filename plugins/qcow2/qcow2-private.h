/* The qcow2 plugin's two halves: a reader for existing images and a writer for new ones. */
#pragma once

#include "qcow2-format.h"

typedef struct _Qcow2Reader Qcow2Reader;
typedef struct _Qcow2Writer Qcow2Writer;

Qcow2Reader *qcow2_reader_open (const VmiOpenArgs *args, GError **error);
gboolean qcow2_reader_get_info (Qcow2Reader *r, VmiImageInfo *info, GError **error);
gboolean qcow2_reader_read (Qcow2Reader *r, guint64 offset, void *buf, gsize len, GError **error);
gboolean qcow2_reader_block_status (Qcow2Reader *r, guint64 offset, guint64 max_length,
				    VmiExtent *extent, GError **error);
void qcow2_reader_free (Qcow2Reader *r);

Qcow2Writer *qcow2_writer_new (int fd, guint64 virtual_size, GVariant *options, GError **error);
gboolean qcow2_writer_write (Qcow2Writer *w, guint64 offset, const void *buf, gsize len,
			     GError **error);
gboolean qcow2_writer_finish (Qcow2Writer *w, GError **error);
void qcow2_writer_free (Qcow2Writer *w);
