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
            if (total < 12 || (total & 3u) != 0) { status = 4; break; }
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

static PyMethodDef methods[] = {
    {"walk_pcap", walk_pcap, METH_VARARGS, "Walk pcap records (see decoders/wire/walk.py)."},
    {"walk_pcapng", walk_pcapng, METH_VARARGS, "Walk pcapng packet blocks (see decoders/wire/walk.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
