#include <stddef.h>
#include <string.h>

#include <zlib.h>

#include "vmi-uec-probe.h"

/*
 * zlib allocates its state through these, here from a buffer on probe's stack: probe may not
 * allocate. One inflate call of at most a tar header needs the state and a small window.
 */
#define UEC_PROBE_ARENA (16u * 1024u)

typedef struct {
	guint8 *base;
	gsize used;
	gsize size;
} UecArena;

static voidpf
uec_arena_alloc (voidpf opaque, uInt items, uInt size)
{
	UecArena *arena = opaque;
	gsize n;
	voidpf p;

	if (!g_size_checked_mul (&n, items, size) || n > arena->size)
		return Z_NULL;
	n = (n + 15u) & ~(gsize) 15u;
	if (n > arena->size - arena->used)
		return Z_NULL;
	p = arena->base + arena->used;
	arena->used += n;
	return p;
}

static void
uec_arena_free (voidpf opaque, voidpf address)
{
}

/* A ustar header (POSIX "ustar\0" or GNU "ustar  ") whose checksum is right. */
static gboolean
uec_is_tar_header (const guint8 *h)
{
	guint64 stored = 0, sum_unsigned = 0;
	gint64 sum_signed = 0;
	guint i = 148;

	if (memcmp (h + 257, "ustar", 5) != 0)
		return FALSE;
	while (i < 156 && h[i] == ' ')
		i++;
	for (; i < 156 && h[i] >= '0' && h[i] <= '7'; i++)
		stored = stored << 3 | (guint64) (h[i] - '0');
	for (i = 0; i < 512; i++) {
		guint8 c = i >= 148 && i < 156 ? ' ' : h[i];

		sum_unsigned += c;
		sum_signed += (gint8) c;
	}
	return stored == sum_unsigned || (gint64) stored == sum_signed;
}

/*
 * gzip magic, and the first 512 bytes it inflates to are a tar header. That is any .tar.gz:
 * open decides whether it holds a machine image. LIKELY beats raw (and ari's WEAK for any gzip)
 * and loses to every format with a magic of its own.
 */
guint
vmi_uec_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	union {
		max_align_t align;
		guint8 bytes[UEC_PROBE_ARENA];
	} arena_buf;
	UecArena arena = { arena_buf.bytes, 0, sizeof arena_buf.bytes };
	guint8 header[512];
	z_stream z;
	gsize produced;

	if (head_len < 18 || head[0] != 0x1f || head[1] != 0x8b || head[2] != 8)
		return VMI_PROBE_NO;
	memset (&z, 0, sizeof z);
	z.zalloc = uec_arena_alloc;
	z.zfree = uec_arena_free;
	z.opaque = &arena;
	/* One call inflates the header, so matches never reach past its output: a 512-byte
	 * window (9 bits) is enough, and gzip declares no window size to check it against. */
	if (inflateInit2 (&z, 16 + 9) != Z_OK)
		return VMI_PROBE_NO;
	z.next_in = (Bytef *) head;
	z.avail_in = (uInt) MIN (head_len, (gsize) G_MAXUINT32);
	z.next_out = header;
	z.avail_out = sizeof header;
	inflate (&z, Z_SYNC_FLUSH);
	produced = sizeof header - z.avail_out;
	inflateEnd (&z);
	if (produced < sizeof header || !uec_is_tar_header (header))
		return VMI_PROBE_NO;
	return VMI_PROBE_LIKELY;
}
