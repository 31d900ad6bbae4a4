/*
 * Record walker for the bulk capture path.
 *
 * Why C: finding record boundaries in pcap/pcapng is inherently sequential (each record's
 * length says where the next one starts), so numpy cannot vectorise it. The pure-Python
 * walk (decoders/wire/walk.py, same contract) manages ~2.3 M records/s here, which alone
 * eats half of the 1 M packets/s budget; this loop does the same in a few milliseconds
 * per million records. Everything after the walk (link layers, IP, UDP, RTP, header
 * extensions) stays in numpy. The Python walker remains the reference: a test asserts
 * both produce identical arrays on every fixture.
 *
 * Contract (both walkers):
 *   walk_pcap(buf, start, big_endian, max_caplen, off, caplen, origlen, ts_a, ts_b)
 *   walk_pcapng(buf, start, big_endian, max_caplen, off, caplen, origlen, ts_a, ts_b, iface)
 * fill the caller's preallocated arrays (int64 off, uint32 others) up to their length and
 * return (count, next_offset, status):
 *   0 END       the buffer ended exactly at a record boundary
 *   1 FULL      the output arrays are full
 *   2 PARTIAL   the record at next_offset does not fit in the buffer (more data, or truncation)
 *   3 SPECIAL   pcapng only: a block the Python side must read (SHB, IDB, or a block Wireshark
 *               numbers as a frame) starts at next_offset
 *   4 CORRUPT   the record at next_offset has an impossible length
 * pcap: ts_a = seconds, ts_b = fraction; pcapng: ts_a = high word, ts_b = low word,
 * iface = interface id, or 0xFFFFFFFF for a Simple Packet Block (no timestamp).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rd32(const unsigned char *p, int big) {
    if (big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static inline uint16_t rd16(const unsigned char *p, int big) {
    if (big)
        return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
    return (uint16_t)(((uint16_t)p[1] << 8) | p[0]);
}

/* Blocks Wireshark numbers as frames without being packets (systemd journal, sysdig events,
 * custom blocks): the Python side counts them so frame numbers stay Wireshark's. */
static inline int numbered_block(uint32_t type) {
    return type == 0x00000009u || type == 0x00000204u || type == 0x00000208u ||
           type == 0x00000216u || type == 0x00000BADu || type == 0x40000BADu;
}

static int get_out(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->itemsize != itemsize) {
        PyErr_SetString(PyExc_TypeError, "output array has the wrong item size");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *walk_pcap(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer in;
    Py_ssize_t start;
    int big;
    unsigned long max_caplen;
    PyObject *o_off, *o_cap, *o_orig, *o_a, *o_b;
    if (!PyArg_ParseTuple(args, "y*nikOOOOO", &in, &start, &big, &max_caplen, &o_off, &o_cap,
                          &o_orig, &o_a, &o_b))
        return NULL;
    Py_buffer v[5];
    PyObject *objs[5] = {o_off, o_cap, o_orig, o_a, o_b};
    Py_ssize_t sizes[5] = {8, 4, 4, 4, 4};
    int got = 0;
    for (; got < 5; got++)
        if (get_out(objs[got], &v[got], sizes[got]) < 0)
            goto fail;
    {
        int64_t *off = v[0].buf;
        uint32_t *cap = v[1].buf, *orig = v[2].buf, *ta = v[3].buf, *tb = v[4].buf;
        Py_ssize_t capacity = v[0].len / 8;
        for (int i = 1; i < 5; i++)
            if (v[i].len / 4 < capacity)
                capacity = v[i].len / 4;
        const unsigned char *b = in.buf;
        Py_ssize_t n = in.len, pos = start, count = 0;
        int status = 0;
        Py_BEGIN_ALLOW_THREADS
        for (;;) {
            if (pos == n) { status = 0; break; }
            if (count >= capacity) { status = 1; break; }
            if (n - pos < 16) { status = 2; break; }
            const unsigned char *h = b + pos;
            uint32_t incl = rd32(h + 8, big);
            if (incl > max_caplen) { status = 4; break; }
            if ((Py_ssize_t)incl > n - pos - 16) { status = 2; break; }
            ta[count] = rd32(h, big);
            tb[count] = rd32(h + 4, big);
            cap[count] = incl;
            orig[count] = rd32(h + 12, big);
            off[count] = pos + 16;
            count++;
            pos += 16 + (Py_ssize_t)incl;
        }
        Py_END_ALLOW_THREADS
        for (int i = 0; i < 5; i++) PyBuffer_Release(&v[i]);
        PyBuffer_Release(&in);
        return Py_BuildValue("nni", count, pos, status);
    }
fail:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    PyBuffer_Release(&in);
    return NULL;
}

static PyObject *walk_pcapng(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer in;
    Py_ssize_t start;
    int big;
    unsigned long max_caplen;
    PyObject *o_off, *o_cap, *o_orig, *o_a, *o_b, *o_if;
    if (!PyArg_ParseTuple(args, "y*nikOOOOOO", &in, &start, &big, &max_caplen, &o_off, &o_cap,
                          &o_orig, &o_a, &o_b, &o_if))
        return NULL;
    Py_buffer v[6];
    PyObject *objs[6] = {o_off, o_cap, o_orig, o_a, o_b, o_if};
    Py_ssize_t sizes[6] = {8, 4, 4, 4, 4, 4};
    int got = 0;
    for (; got < 6; got++)
        if (get_out(objs[got], &v[got], sizes[got]) < 0)
            goto fail;
    {
        int64_t *off = v[0].buf;
        uint32_t *cap = v[1].buf, *orig = v[2].buf, *ta = v[3].buf, *tb = v[4].buf, *ifc = v[5].buf;
        Py_ssize_t capacity = v[0].len / 8;
        for (int i = 1; i < 6; i++)
            if (v[i].len / 4 < capacity)
                capacity = v[i].len / 4;
        const unsigned char *b = in.buf;
        Py_ssize_t n = in.len, pos = start, count = 0;
        int status = 0;
        Py_BEGIN_ALLOW_THREADS
        for (;;) {
            if (pos == n) { status = 0; break; }
            if (count >= capacity) { status = 1; break; }
            if (n - pos < 12) { status = 2; break; }
            const unsigned char *h = b + pos;
            uint32_t type = rd32(h, big);
            uint32_t total = rd32(h + 4, big);
            if (type == 0x0A0D0D0Au || type == 1u || numbered_block(type)) { status = 3; break; }
            /* longer than a record may be (+ 64, walk.MAX_BLOCK_OVERHEAD): corrupt */
            if (total < 12 || (total & 3u) != 0 || (uint64_t)total > (uint64_t)max_caplen + 64u) {
                status = 4;
                break;
            }
            if ((Py_ssize_t)total > n - pos) { status = 2; break; }
            if (rd32(h + total - 4, big) != total) { status = 4; break; }
            if (type == 6u) { /* Enhanced Packet Block */
                if (total < 32) { status = 4; break; }
                uint32_t incl = rd32(h + 20, big);
                if (incl > max_caplen || (Py_ssize_t)incl > (Py_ssize_t)total - 32) { status = 4; break; }
                ifc[count] = rd32(h + 8, big);
                ta[count] = rd32(h + 12, big);
                tb[count] = rd32(h + 16, big);
                cap[count] = incl;
                orig[count] = rd32(h + 24, big);
                off[count] = pos + 28;
                count++;
            } else if (type == 3u) { /* Simple Packet Block */
                if (total < 16) { status = 4; break; }
                uint32_t o = rd32(h + 8, big);
                uint32_t room = total - 16;
                ifc[count] = 0xFFFFFFFFu;
                ta[count] = 0;
                tb[count] = 0;
                cap[count] = o < room ? o : room;
                orig[count] = o;
                off[count] = pos + 12;
                count++;
            } else if (type == 2u) { /* obsolete Packet Block */
                if (total < 32) { status = 4; break; }
                uint32_t incl = rd32(h + 20, big);
                if (incl > max_caplen || (Py_ssize_t)incl > (Py_ssize_t)total - 32) { status = 4; break; }
                ifc[count] = rd16(h + 8, big);
                ta[count] = rd32(h + 12, big);
                tb[count] = rd32(h + 16, big);
                cap[count] = incl;
                orig[count] = rd32(h + 24, big);
                off[count] = pos + 28;
                count++;
            }
            pos += (Py_ssize_t)total;
        }
        Py_END_ALLOW_THREADS
        for (int i = 0; i < 6; i++) PyBuffer_Release(&v[i]);
        PyBuffer_Release(&in);
        return Py_BuildValue("nni", count, pos, status);
    }
fail:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    PyBuffer_Release(&in);
    return NULL;
}


/* ------------------------------------------------------------------------------------------
 * decode(): see below.
 *
 * The per-packet decoding of the bulk path in one pass, for the frames the vectorised path
 * handles (see decoders/wire/bulk.py, whose numpy code is the reference for every rule here
 * and which tests hold to the scalar parsers): link layer (Ethernet + VLAN tags, SLL, SLL2,
 * raw IP, NULL/LOOP), IPv4 without fragments, IPv6 without extension headers, UDP, TURN
 * ChannelData, RFC 7983 classification, RTP header, RFC 8285 extension walk, RTCP header.
 * Why C: numpy needs ~40 gathers over the whole chunk per packet field; one pass touches each
 * packet once, which is what makes the 1 M packets/s target reachable on one core.
 * Each record gets a `reason`: ROW (a row), FALLBACK (scalar path decides), NON_IP, NON_UDP,
 * MALFORMED_UDP; rows are written straight into the packet table's columns.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int64_t frame, timestamp_ns;
    uint64_t src_hi, src_lo, dst_hi, dst_lo;
    int64_t payload_off;
    uint32_t length, rtp_timestamp, ssrc, payload_length;
    int32_t extension_profile;
    uint16_t src_port, dst_port, sequence_number, header_length, extension_offset, extension_length;
    int16_t audio_level;
    uint8_t reason, tunnel, kind, malformed, payload_type, marker, csrc_count, padding_length, voice,
        stun_wrapped;
} Row;

enum { R_ROW = 0, R_FALLBACK = 1, R_NON_IP = 2, R_NON_UDP = 3, R_MALFORMED_UDP = 4 };
enum { K_OTHER = 0, K_STUN = 1, K_ZRTP = 2, K_DTLS = 3, K_TURN = 4, K_RTP = 5, K_RTCP = 6 };

static inline uint32_t be16(const unsigned char *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64(const unsigned char *p) {
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
}
static inline int is_vlan(int et) { return et == 0x8100 || et == 0x88A8 || et == 0x9100; }

static void decode_payload(const unsigned char *b, int64_t p, int64_t len, int level_id, int srtp,
                           Row *r, uint64_t *counts) {
    int first = len > 0 ? b[p] : 256;
    if (first >= 64 && first < 80) { /* TURN ChannelData */
        int ok = len >= 4;
        int64_t inner = ok ? be16(b + p + 2) : 0;
        ok = ok && 4 + inner <= len;
        if (ok) {
            r->tunnel = 1;
            p += 4;
            len = inner;
            first = len > 0 ? b[p] : 256;
        } else {
            r->malformed = 1;
            counts[0]++;
        }
    }
    r->payload_off = p;
    r->length = (uint32_t)len;
    int second = len > 1 ? b[p + 1] : -1;
    int kind = K_OTHER;
    if (first < 4 && len >= 20) kind = K_STUN;
    else if (first >= 16 && first < 20 && len >= 16) kind = K_ZRTP;
    else if (first >= 20 && first < 64 && len >= 13) kind = K_DTLS;
    else if (first >= 64 && first < 80 && len >= 4) kind = K_TURN;
    else if (first >= 128 && first < 192) {
        int rtcp_pt = second >= 192 && second < 224;
        if (rtcp_pt && len >= 8) kind = K_RTCP;
        else if (!rtcp_pt && len >= 12) kind = K_RTP;
    }
    r->kind = (uint8_t)kind;
    if (kind == K_STUN) {
        uint32_t type = be16(b + p);
        /* Send/Data indications go to the scalar path (not when already inside ChannelData,
         * where the scalar path does not unwrap a second time either) */
        r->stun_wrapped = r->tunnel == 0 && (type == 0x0016 || type == 0x0017);
    } else if (kind == K_RTCP) {
        r->payload_type = (uint8_t)second;
        r->ssrc = be32(b + p + 4);
    } else if (kind == K_RTP) {
        int csrc = first & 0x0F;
        int64_t header = 12 + 4 * csrc;
        int has_ext = (first & 0x10) != 0;
        int has_pad = (first & 0x20) != 0 && !srtp;
        int bad = header > len;
        int64_t ext_at = header + 4;
        bad = bad || (has_ext && ext_at > len);
        int32_t profile = -1;
        int64_t ext_len = 0;
        if (has_ext && !bad) {
            profile = (int32_t)be16(b + p + header);
            ext_len = 4 * (int64_t)be16(b + p + header + 2);
        }
        int64_t payload_start = has_ext ? ext_at + ext_len : header;
        bad = bad || payload_start > len;
        int64_t pad = 0;
        if (has_pad && !bad) {
            pad = b[p + (len > 1 ? len : 1) - 1];
            bad = pad == 0 || payload_start + pad > len;
        }
        int two_byte = (profile & 0xFFF0) == 0x1000;
        int level = -1, voice = 0;
        if (!bad && has_ext && (profile == 0xBEDE || two_byte) && ext_len > 0) {
            int64_t pos = p + ext_at, end = p + ext_at + ext_len;
            int found = 0;
            int64_t data_at = 0, data_len = 0;
            for (;;) {
                int byte = b[pos];
                int ident = two_byte ? byte : byte >> 4;
                int header_bytes = two_byte ? 2 : 1;
                int64_t size;
                int fits;
                if (two_byte) {
                    fits = pos + 1 < end;
                    size = fits ? b[pos + 1] : 0;
                } else {
                    fits = 1;
                    size = (byte & 0x0F) + 1;
                }
                int padding = ident == 0;
                int stop = !two_byte && ident == 15;
                int64_t element_end = pos + header_bytes + size;
                fits = fits && element_end <= end;
                int element = !padding && !stop;
                if (element && fits && ident == level_id && !found) {
                    found = 1;
                    data_at = pos + header_bytes;
                    data_len = size;
                }
                if (element && !fits) {
                    bad = 1;
                    break;
                }
                int64_t advance = padding ? pos + 1 : element_end;
                if (stop || advance >= end) break;
                pos = advance;
            }
            if (!bad && level_id > 0 && found) {
                if (data_len < 1) bad = 1;
                else {
                    level = b[data_at] & 0x7F;
                    voice = (b[data_at] & 0x80) != 0;
                }
            }
        }
        if (bad) {
            r->malformed = 1;
            counts[1]++;
            return;
        }
        r->marker = (second & 0x80) != 0;
        r->payload_type = (uint8_t)(second & 0x7F);
        r->sequence_number = (uint16_t)be16(b + p + 2);
        r->rtp_timestamp = be32(b + p + 4);
        r->ssrc = be32(b + p + 8);
        r->csrc_count = (uint8_t)csrc;
        r->header_length = (uint16_t)payload_start;
        r->padding_length = (uint8_t)pad;
        r->payload_length = (uint32_t)(len - payload_start - pad);
        if (has_ext) {
            r->extension_profile = profile;
            r->extension_offset = (uint16_t)ext_at;
            r->extension_length = (uint16_t)ext_len;
        }
        r->audio_level = (int16_t)level;
        r->voice = (uint8_t)voice;
    }
}

static int decode_frame(const unsigned char *b, int64_t off, int64_t caplen, int link, int level_id,
                        int srtp, Row *r, uint64_t *counts) {
    const unsigned char *f = b + off;
    int64_t net = 0;
    int et;
    switch (link) {
    case 1: { /* Ethernet */
        if (caplen < 14) return R_FALLBACK;
        et = (int)be16(f + 12);
        int64_t pos = 14;
        for (int k = 0; k < 8 && is_vlan(et) && pos + 4 <= caplen; k++) {
            et = (int)be16(f + pos + 2);
            pos += 4;
        }
        if (is_vlan(et)) return R_FALLBACK;
        net = pos;
        break;
    }
    case 113:
        if (caplen < 16) return R_FALLBACK;
        et = (int)be16(f + 14);
        net = 16;
        break;
    case 276:
        if (caplen < 20) return R_FALLBACK;
        et = (int)be16(f);
        net = 20;
        break;
    case 101:
    case 12: {
        if (caplen < 1) return R_FALLBACK;
        int v = f[0] >> 4;
        et = v == 4 ? 0x0800 : v == 6 ? 0x86DD : -2;
        break;
    }
    case 228:
        if (caplen < 1) return R_FALLBACK;
        et = 0x0800;
        break;
    case 229:
        if (caplen < 1) return R_FALLBACK;
        et = 0x86DD;
        break;
    case 0:
    case 108: {
        if (caplen < 4) return R_FALLBACK;
        uint32_t le = (uint32_t)f[0] | ((uint32_t)f[1] << 8) | ((uint32_t)f[2] << 16) |
                      ((uint32_t)f[3] << 24);
        uint32_t family = le < 0x10000 ? le : be32(f);
        et = family == 2 ? 0x0800 : (family == 24 || family == 28 || family == 30) ? 0x86DD : -2;
        net = 4;
        break;
    }
    default:
        return R_FALLBACK;
    }
    if (et != 0x0800 && et != 0x86DD) return R_NON_IP;
    int64_t end = caplen, transport_at, ip_end;
    int proto;
    if (et == 0x0800) {
        if (net + 20 > end) return R_FALLBACK;
        int vihl = f[net];
        int64_t ihl = (vihl & 0x0F) * 4;
        int64_t total = be16(f + net + 2);
        int frag = be16(f + net + 6) & 0x3FFF;
        if ((vihl >> 4) != 4 || ihl < 20 || total < ihl || net + total > end || frag != 0)
            return R_FALLBACK;
        proto = f[net + 9];
        transport_at = net + ihl;
        ip_end = net + total;
        r->src_hi = 0;
        r->src_lo = (uint64_t)be32(f + net + 12) | (0xFFFFull << 32);
        r->dst_hi = 0;
        r->dst_lo = (uint64_t)be32(f + net + 16) | (0xFFFFull << 32);
    } else {
        if (net + 40 > end || (f[net] >> 4) != 6) return R_FALLBACK;
        proto = f[net + 6];
        int64_t plen = be16(f + net + 4);
        if ((proto != 6 && proto != 17) || plen == 0 || net + 40 + plen > end) return R_FALLBACK;
        transport_at = net + 40;
        ip_end = net + 40 + plen;
        r->src_hi = be64(f + net + 8);
        r->src_lo = be64(f + net + 16);
        r->dst_hi = be64(f + net + 24);
        r->dst_lo = be64(f + net + 32);
    }
    if (proto == 6) return R_FALLBACK;
    if (proto != 17) return R_NON_UDP;
    if (transport_at + 8 > ip_end) return R_MALFORMED_UDP;
    int64_t ulen = be16(f + transport_at + 4);
    if (ulen < 8 || transport_at + ulen > ip_end) return R_MALFORMED_UDP;
    r->src_port = (uint16_t)be16(f + transport_at);
    r->dst_port = (uint16_t)be16(f + transport_at + 2);
    decode_payload(b, off + transport_at + 8, ulen - 8, level_id, srtp, r, counts);
    return R_ROW;
}

/* The output columns: X(name, C type), one line each, in the order of
 * decoders.wire.rowbuild.VECTOR_COLUMNS (the packet table's declaration). Each column is the
 * Row field of the same name. This list drives the column enum, the item sizes checked
 * against the arrays passed in, the writes below and the module's COLUMNS attribute, which
 * decoders/wire/bulk.py compares with VECTOR_COLUMNS before using decode();
 * tests/wire/test_rowbuild.py reads this list from the source and names any difference. */
#define VECTOR_COLUMNS(X)                                                                      \
    X(frame, int64_t)                                                                          \
    X(timestamp_ns, int64_t)                                                                   \
    X(src_hi, uint64_t)                                                                        \
    X(src_lo, uint64_t)                                                                        \
    X(dst_hi, uint64_t)                                                                        \
    X(dst_lo, uint64_t)                                                                        \
    X(src_port, uint16_t)                                                                      \
    X(dst_port, uint16_t)                                                                      \
    X(tunnel, uint8_t)                                                                         \
    X(kind, uint8_t)                                                                           \
    X(malformed, uint8_t)                                                                      \
    X(length, uint32_t)                                                                        \
    X(payload_type, uint8_t)                                                                   \
    X(marker, uint8_t)                                                                         \
    X(sequence_number, uint16_t)                                                               \
    X(rtp_timestamp, uint32_t)                                                                 \
    X(ssrc, uint32_t)                                                                          \
    X(csrc_count, uint8_t)                                                                     \
    X(header_length, uint16_t)                                                                 \
    X(payload_length, uint32_t)                                                                \
    X(padding_length, uint8_t)                                                                 \
    X(extension_profile, int32_t)                                                              \
    X(extension_offset, uint16_t)                                                              \
    X(extension_length, uint16_t)                                                              \
    X(audio_level, int16_t)                                                                    \
    X(voice, uint8_t)

enum {
#define X(name, type) C_##name,
    VECTOR_COLUMNS(X)
#undef X
    N_COLUMNS
};
static const Py_ssize_t column_size[N_COLUMNS] = {
#define X(name, type) (Py_ssize_t)sizeof(type),
    VECTOR_COLUMNS(X)
#undef X
};
static const char *const column_name[N_COLUMNS] = {
#define X(name, type) #name,
    VECTOR_COLUMNS(X)
#undef X
};

/* decode(buf, off, caplen, link, ts, frame0, columns, start, fallback, counts, level_id, srtp)
 * -> (rows written, fallbacks). Rows go to columns[...][start + j]; the record index of each
 * frame for the scalar path (FALLBACK, or a STUN Send/Data indication to unwrap) goes to
 * fallback[]; counts[] += {malformed ChannelData, malformed RTP, non-IP, non-UDP, bad UDP}. */
static PyObject *decode(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer in, v_off, v_cap, v_link, v_ts, v_fb, v_counts;
    Py_buffer cols[N_COLUMNS];
    PyObject *columns;
    long long frame0;
    Py_ssize_t start;
    int level_id, srtp, got = 0;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*LO!nw*w*ii", &in, &v_off, &v_cap, &v_link, &v_ts,
                          &frame0, &PyTuple_Type, &columns, &start, &v_fb, &v_counts, &level_id,
                          &srtp))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = v_off.len / 8;
    if (PyTuple_GET_SIZE(columns) != N_COLUMNS) {
        PyErr_SetString(PyExc_ValueError, "decode: wrong number of columns");
        goto done;
    }
    for (; got < N_COLUMNS; got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(columns, got), &cols[got],
                               PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        if (cols[got].itemsize != column_size[got] || cols[got].len / column_size[got] < start + n) {
            got++;
            PyErr_Format(PyExc_ValueError, "decode: column %d has the wrong size", got - 1);
            goto done;
        }
    }
    if (v_cap.len / 4 < n || v_link.len / 4 < n || v_ts.len / 8 < n || v_fb.len / 8 < n ||
        v_counts.len < 5 * 8) {
        PyErr_SetString(PyExc_ValueError, "decode: array sizes do not match");
        goto done;
    }
    {
        const unsigned char *b = in.buf;
        const int64_t *off = v_off.buf, *ts = v_ts.buf;
        const uint32_t *cap = v_cap.buf;
        const int32_t *link = v_link.buf;
        int64_t *fallback = v_fb.buf;
        uint64_t *counts = v_counts.buf;
        Py_ssize_t size = in.len, j = start, nf = 0;
        int bad_bounds = 0;
#define COL(k, type) ((type *)cols[k].buf)
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            if (off[i] < 0 || off[i] + (int64_t)cap[i] > (int64_t)size) {
                bad_bounds = 1;
                break;
            }
            Row r;
            memset(&r, 0, sizeof r);
            r.extension_profile = -1;
            r.audio_level = -1;
            int reason = decode_frame(b, off[i], cap[i], link[i], level_id, srtp, &r, counts);
            if (reason == R_FALLBACK || (reason == R_ROW && r.stun_wrapped)) {
                fallback[nf++] = i;
                continue;
            }
            if (reason != R_ROW) {
                counts[reason]++; /* R_NON_IP=2, R_NON_UDP=3, R_MALFORMED_UDP=4 */
                continue;
            }
            r.frame = frame0 + i;
            r.timestamp_ns = ts[i];
#define X(name, type) COL(C_##name, type)[j] = (type)r.name;
            VECTOR_COLUMNS(X)
#undef X
            j++;
        }
        Py_END_ALLOW_THREADS
#undef COL
        if (bad_bounds) {
            PyErr_SetString(PyExc_ValueError, "decode: a record lies outside the buffer");
            goto done;
        }
        result = Py_BuildValue("nn", j - start, nf);
    }
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(&cols[k]);
    PyBuffer_Release(&in);
    PyBuffer_Release(&v_off);
    PyBuffer_Release(&v_cap);
    PyBuffer_Release(&v_link);
    PyBuffer_Release(&v_ts);
    PyBuffer_Release(&v_fb);
    PyBuffer_Release(&v_counts);
    return result;
}

static PyMethodDef methods[] = {
    {"walk_pcap", walk_pcap, METH_VARARGS, "Walk pcap records (see decoders/wire/walk.py)."},
    {"walk_pcapng", walk_pcapng, METH_VARARGS, "Walk pcapng packet blocks (see decoders/wire/walk.py)."},
    {"decode", decode, METH_VARARGS, "Decode records to packet-table rows (see decoders/wire/bulk.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods,
                                     NULL, NULL, NULL, NULL};

/* COLUMNS: ((name, item size), ...) of the columns decode() writes, in its order. */
PyMODINIT_FUNC PyInit__walk(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *columns = PyTuple_New(N_COLUMNS);
    if (columns == NULL)
        goto fail;
    for (Py_ssize_t k = 0; k < N_COLUMNS; k++) {
        PyObject *item = Py_BuildValue("(sn)", column_name[k], column_size[k]);
        if (item == NULL) {
            Py_DECREF(columns);
            goto fail;
        }
        PyTuple_SET_ITEM(columns, k, item);
    }
    if (PyModule_AddObject(m, "COLUMNS", columns) < 0) {
        Py_DECREF(columns);
        goto fail;
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
