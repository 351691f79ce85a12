/* The reader's state, shared by its header parser and its cluster mapper. */
#pragma once

#include <zlib.h>

#include "qcow2-private.h"

#define QCOW2_L2_CACHE_BYTES (8u * 1024u * 1024u) /* L2 tables kept in memory */
#define QCOW2_L2_CACHE_MAX 16u
#define QCOW2_LIST_BYTES (1024u * 1024u) /* snapshot or bitmap listing */
#define QCOW2_MAX_LISTED_SNAPSHOTS 1024u

typedef struct {
	guint64 offset; /* 0: empty */
	guint8 *data;	/* cluster_size bytes */
	guint64 stamp;	/* last use, for LRU */
} Qcow2L2Slot;

struct _Qcow2Reader {
	VmiFileRange file; /* the image's bytes in the daemon's fd */
	guint64 file_size;

	/* header */
	guint32 version;
	guint32 cluster_bits;
	guint32 cluster_size;
	guint64 size;
	guint32 crypt_method;
	guint32 l1_size;
	guint64 l1_offset;
	guint64 refcount_table_offset;
	guint32 refcount_table_clusters;
	guint32 nb_snapshots;
	guint64 snapshots_offset;
	guint64 incompat, compat, autoclear;
	guint32 refcount_order;
	guint32 header_length;
	guint8 compression_type;

	/* extensions */
	char *backing_file;
	char *backing_format;
	char *data_file;
	gboolean has_crypto_ext;
	guint64 crypto_offset, crypto_length;
	gboolean has_bitmaps_ext;
	guint32 nb_bitmaps;
	guint64 bitmap_dir_offset, bitmap_dir_size;
	GVariant *snapshots; /* aa{sv} or NULL */
	GVariant *bitmaps;   /* aa{sv} or NULL */

	/* geometry */
	gboolean extended_l2;
	guint32 l2_entry_size; /* 8, or 16 with extended L2 entries */
	guint32 l2_entries;
	guint32 subcluster_size;
	guint32 csize_shift;
	guint64 csize_mask, coffset_mask;

	/* the L1 entries that the virtual size uses, host byte order */
	guint64 *l1;
	guint32 l1_used;

	/* L2 cache */
	Qcow2L2Slot cache[QCOW2_L2_CACHE_MAX];
	guint l2_slots;
	guint64 stamp;

	/* the last decompressed cluster */
	z_stream zstream;
	gboolean zstream_ready;
	guint8 *cbuf; /* 2 x cluster_size: the largest compressed size an L2 entry can say */
	guint8 *dbuf; /* cluster_size */
	guint64 dbuf_entry; /* the L2 entry dbuf holds, 0 if none */
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Qcow2Reader, qcow2_reader_free)
