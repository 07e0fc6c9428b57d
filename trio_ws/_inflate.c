/* trio_ws._inflate: the receiving half of permessage-deflate (RFC 7692) on zlib itself.
 *
 * Optional, like trio_ws._speedups: built only where zlib's header is found, and
 * trio_ws._deflate falls back to its pure-Python Inflater (on the zlib module) without it.
 * Inflater here is that class, line for line in behaviour (tests/test_inflate.py compares the
 * two on generated streams): the same pieces in, the same bytes out, the same violations.
 *
 * Why in C: the zlib module gives each decompress() call a 32 KiB output buffer, then copies
 * the result into a bytes object of its size; the caller has already copied the payload to
 * append the 4-byte tail. Here both ends go through one buffer each, kept by the module and
 * reused (the GIL is held throughout, and a buffer in use is taken out of the module's hands,
 * so a nested call cannot share it), and a whole TEXT message is decoded straight from the
 * output: one copy of the payload in, the str out.
 *
 * Inflater(wbits, no_context_takeover, max_msg_size, violation, invalid_code, too_big_code)
 *   inflate(data, with_tail=False) -> bytes   a piece of a message
 *   end_message() -> bytes                    the message's last frame is in
 *   inflate_message(payload) -> bytes         a whole message (also: calling the object)
 *   reset_message()                           forget the message being received
 *   max_msg_size (read/write), inflated (read)
 * A violation is raised as violation(invalid_code or too_big_code, reason).
 *
 * The capsule trio_ws._inflate._C_API gives trio_ws._speedups.scan_messages the type and
 * inflate_frame(inflater, payload, length, text, &bad): a whole message from a frame that is
 * still in the read buffer, as str (text) or bytes; *bad = 1 when a text message is not
 * UTF-8 (then its bytes are returned, for the Python parser to raise 1007).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "_inflate.h"

static const unsigned char TAIL[4] = {0x00, 0x00, 0xff, 0xff};

/* ------------------------------------------------------------------------------------------
 * Module-owned buffers. take() hands one out and forgets it; give() takes it back (or frees
 * it if another was made meanwhile, or if it grew past KEEP).
 */
typedef struct {
    unsigned char *data;
    size_t size;
} Buffer;

#define KEEP (256 * 1024)

static Buffer spare_out = {NULL, 0};
static Buffer spare_in = {NULL, 0};

static Buffer
take(Buffer *spare)
{
    Buffer b = *spare;
    spare->data = NULL;
    spare->size = 0;
    return b;
}

static void
give(Buffer *spare, Buffer b)
{
    if (spare->data == NULL && b.size <= KEEP) {
        *spare = b;
    }
    else {
        PyMem_RawFree(b.data);
    }
}

static int
reserve(Buffer *b, size_t need)
{
    size_t size;
    unsigned char *data;

    if (need <= b->size) {
        return 0;
    }
    size = b->size ? b->size : 16384;
    while (size < need) {
        if (size > PY_SSIZE_T_MAX / 2) {
            size = need;
            break;
        }
        size *= 2;
    }
    data = PyMem_RawRealloc(b->data, size);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->size = size;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    z_stream zst;
    int ready;         /* zst is initialised */
    int restart;       /* the stream ended: reset zst before the next byte */
    int wbits;
    int no_context_takeover;
    int stream_ended;  /* the message's data so far ends with a complete DEFLATE stream */
    long long max_msg_size;
    long long inflated;  /* bytes inflated for the message being received */
    PyObject *violation;
    PyObject *invalid_code;
    PyObject *too_big_code;
} Inflater;

static PyTypeObject Inflater_Type;

static int
fail(Inflater *self, PyObject *code, PyObject *reason)
{
    PyObject *exc;

    if (reason == NULL) {
        return -1;
    }
    exc = PyObject_CallFunctionObjArgs(self->violation, code, reason, NULL);
    Py_DECREF(reason);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return -1;
}

static int
zlib_failed(Inflater *self, int err)
{
    const char *msg = self->zst.msg;

    self->restart = 1;
    if (err == Z_MEM_ERROR) {
        PyErr_NoMemory();
        return -1;
    }
    if (msg == NULL) {
        msg = err == Z_DATA_ERROR ? "invalid input data" : "inconsistent stream state";
    }
    /* The zlib module's wording, so that both Inflaters say the same. */
    return fail(self, self->invalid_code,
                PyUnicode_FromFormat(
                    "invalid compressed data: Error %d while decompressing data: %.200s", err,
                    msg));
}

static int
too_big(Inflater *self)
{
    return fail(self, self->too_big_code,
                PyUnicode_FromFormat("a compressed message inflates past max_msg_size=%lld",
                                     self->max_msg_size));
}

static int
stream_ready(Inflater *self)
{
    int err;

    if (!self->ready) {
        memset(&self->zst, 0, sizeof(self->zst));
        err = inflateInit2(&self->zst, -self->wbits);
        if (err != Z_OK) {
            return zlib_failed(self, err);
        }
        self->ready = 1;
    }
    else if (self->restart) {
        err = inflateReset(&self->zst);
        if (err != Z_OK) {
            return zlib_failed(self, err);
        }
    }
    self->restart = 0;
    return 0;
}

static void
stream_drop(Inflater *self)
{
    if (self->ready) {
        inflateEnd(&self->zst);
        self->ready = 0;
    }
    self->restart = 0;
}

/* Inflate in[0:n] into out from *used on. with_tail: in ends with TAIL, which a stream that
 * ended before it does not need. 0, or -1 with an exception set. */
static int
inflate_into(Inflater *self, const unsigned char *in, size_t n, int with_tail, Buffer *out,
             size_t *used)
{
    z_stream *z = &self->zst;
    long long max = self->max_msg_size;

    if (n) {
        self->stream_ended = 0;
    }
    for (;;) {
        int err;
        /* What a failure leaves counted: the zlib module's decompress() gives nothing back
         * when it fails, so the Python Inflater counts a stream's output only at its end. */
        long long counted = self->inflated;

        if (stream_ready(self) < 0) {
            return -1;
        }
        for (;;) {
            size_t room, give_in = n > UINT_MAX ? UINT_MAX : n, give_out, made;

            if (*used == out->size && reserve(out, out->size + 1) < 0) {
                return -1;
            }
            room = out->size - *used;
            if (max) {
                /* At most what is left of max_msg_size, plus one byte to tell "exactly at
                 * the limit" from "over it". */
                size_t budget = (size_t)(max - self->inflated) + 1;
                if (room > budget) {
                    room = budget;
                }
            }
            give_out = room > UINT_MAX ? UINT_MAX : room;
            z->next_in = (Bytef *)in;
            z->avail_in = (uInt)give_in;
            z->next_out = out->data + *used;
            z->avail_out = (uInt)give_out;
            err = inflate(z, Z_SYNC_FLUSH);
            in += give_in - z->avail_in;
            n -= give_in - z->avail_in;
            made = give_out - z->avail_out;
            *used += made;
            self->inflated += (long long)made;
            if (max && self->inflated > max) {
                self->restart = 1;
                self->inflated = counted;
                return too_big(self);
            }
            if (err == Z_STREAM_END) {
                break;
            }
            if (err != Z_OK && err != Z_BUF_ERROR) {
                self->inflated = counted;
                return zlib_failed(self, err);
            }
            if (z->avail_out == 0) {
                continue; /* more may be waiting: a bigger buffer */
            }
            if (n == 0) {
                return 0; /* all in; the stream goes on */
            }
            if (made == 0 && give_in == z->avail_in) {
                /* No progress with room on both sides: zlib would never take the rest. */
                if (max) {
                    self->restart = 1;
                    self->inflated = counted;
                    return too_big(self); /* (the zlib module leaves it unconsumed) */
                }
                return 0;
            }
        }
        /* A block with BFINAL set ended the DEFLATE stream: RFC 7692 section 7.2.3.4 allows
         * it (for zlibs without a sync flush), and whatever follows starts a new stream. */
        self->restart = 1;
        if (n == 0 || (with_tail && n == 4 && memcmp(in, TAIL, 4) == 0)) {
            /* Complete: the tail (LEN and NLEN of an empty stored block whose header bits are
             * in the byte before) has nothing to complete. */
            self->stream_ended = 1;
            return 0;
        }
    }
}

/* A whole message: in[0:n] ends with TAIL. */
static int
inflate_whole(Inflater *self, const unsigned char *in, size_t n, Buffer *out, size_t *used)
{
    int r = inflate_into(self, in, n, 1, out, used);

    if (r == 0 && self->no_context_takeover) {
        stream_drop(self);  /* the server starts afresh for each message */
    }
    self->inflated = 0;
    self->stream_ended = 0;
    return r;
}

/* payload + TAIL inflated as a whole message: 0 and the output in *out, *used, or -1. */
static int
inflate_payload(Inflater *self, const char *payload, size_t n, Buffer *out, size_t *used)
{
    Buffer in = take(&spare_in);
    int r;

    if (n > (size_t)PY_SSIZE_T_MAX - 4) {
        PyErr_NoMemory();
        give(&spare_in, in);
        return -1;
    }
    if (reserve(&in, n + 4) < 0) {
        give(&spare_in, in);
        return -1;
    }
    memcpy(in.data, payload, n);
    memcpy(in.data + n, TAIL, 4);
    r = inflate_whole(self, in.data, n + 4, out, used);
    give(&spare_in, in);
    return r;
}

static PyObject *
output_bytes(Buffer out, size_t used, int r)
{
    PyObject *result = r < 0 ? NULL : PyBytes_FromStringAndSize((char *)out.data, used);

    give(&spare_out, out);
    return result;
}

/* ------------------------------------------------------------------------------------------
 * Python methods
 */

static PyObject *
Inflater_inflate(Inflater *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"data", "with_tail", NULL};
    Py_buffer data;
    int with_tail = 0, r;
    Buffer out;
    size_t used = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|$p:inflate", keywords, &data, &with_tail)) {
        return NULL;
    }
    out = take(&spare_out);
    r = inflate_into(self, data.buf, (size_t)data.len, with_tail, &out, &used);
    PyBuffer_Release(&data);
    return output_bytes(out, used, r);
}

static PyObject *
Inflater_end_message(Inflater *self, PyObject *Py_UNUSED(ignored))
{
    Buffer out;
    size_t used = 0;
    int r;

    if (self->stream_ended) {
        self->inflated = 0;
        self->stream_ended = 0;
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    out = take(&spare_out);
    r = inflate_whole(self, TAIL, 4, &out, &used);
    return output_bytes(out, used, r);
}

static PyObject *
Inflater_inflate_message(Inflater *self, PyObject *payload)
{
    Py_buffer data;
    Buffer out;
    size_t used = 0;
    int r;

    if (PyObject_GetBuffer(payload, &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    out = take(&spare_out);
    r = inflate_payload(self, data.buf, (size_t)data.len, &out, &used);
    PyBuffer_Release(&data);
    return output_bytes(out, used, r);
}

static PyObject *
Inflater_call(Inflater *self, PyObject *args, PyObject *kwargs)
{
    PyObject *payload;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "an Inflater is called with the payload only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:Inflater", &payload)) {
        return NULL;
    }
    return Inflater_inflate_message(self, payload);
}

static PyObject *
Inflater_reset_message(Inflater *self, PyObject *Py_UNUSED(ignored))
{
    self->inflated = 0;
    self->stream_ended = 0;
    Py_RETURN_NONE;
}

/* For scan_messages: see the capsule's description at the top. */
static PyObject *
inflate_frame(PyObject *inflater, const char *payload, Py_ssize_t n, int text, int *bad)
{
    Inflater *self = (Inflater *)inflater;
    Buffer out = take(&spare_out);
    size_t used = 0;
    PyObject *result;

    *bad = 0;
    if (inflate_payload(self, payload, (size_t)n, &out, &used) < 0) {
        give(&spare_out, out);
        return NULL;
    }
    if (text) {
        result = PyUnicode_DecodeUTF8((const char *)out.data, (Py_ssize_t)used, "strict");
        if (result == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            *bad = 1;
            result = PyBytes_FromStringAndSize((const char *)out.data, (Py_ssize_t)used);
        }
    }
    else {
        result = PyBytes_FromStringAndSize((const char *)out.data, (Py_ssize_t)used);
    }
    give(&spare_out, out);
    return result;
}

static PyObject *
Inflater_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"wbits", "no_context_takeover", "max_msg_size", "violation",
                               "invalid_code", "too_big_code", NULL};
    int wbits, no_context_takeover;
    long long max_msg_size;
    PyObject *violation, *invalid_code, *too_big_code;
    Inflater *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ipLOOO:Inflater", keywords, &wbits,
                                     &no_context_takeover, &max_msg_size, &violation,
                                     &invalid_code, &too_big_code)) {
        return NULL;
    }
    if (wbits < 9 || wbits > 15) {
        PyErr_Format(PyExc_ValueError, "window bits must be from 9 to 15, not %d", wbits);
        return NULL;
    }
    if (max_msg_size < 0) {
        PyErr_SetString(PyExc_ValueError, "max_msg_size must be 0 (no limit) or more");
        return NULL;
    }
    self = (Inflater *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->wbits = wbits;
    self->no_context_takeover = no_context_takeover;
    self->max_msg_size = max_msg_size;
    Py_INCREF(violation);
    self->violation = violation;
    Py_INCREF(invalid_code);
    self->invalid_code = invalid_code;
    Py_INCREF(too_big_code);
    self->too_big_code = too_big_code;
    return (PyObject *)self;
}

static void
Inflater_dealloc(Inflater *self)
{
    stream_drop(self);
    Py_XDECREF(self->violation);
    Py_XDECREF(self->invalid_code);
    Py_XDECREF(self->too_big_code);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Inflater_get_max_msg_size(Inflater *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->max_msg_size);
}

static int
Inflater_set_max_msg_size(Inflater *self, PyObject *value, void *Py_UNUSED(closure))
{
    long long v;

    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "max_msg_size cannot be deleted");
        return -1;
    }
    v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v < 0) {
        PyErr_SetString(PyExc_ValueError, "max_msg_size must be 0 (no limit) or more");
        return -1;
    }
    self->max_msg_size = v;
    return 0;
}

static PyObject *
Inflater_get_inflated(Inflater *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->inflated);
}

static PyMethodDef Inflater_methods[] = {
    {"inflate", (PyCFunction)(void (*)(void))Inflater_inflate, METH_VARARGS | METH_KEYWORDS,
     "inflate(data, *, with_tail=False) -> bytes: the next piece of a compressed message."},
    {"end_message", (PyCFunction)Inflater_end_message, METH_NOARGS,
     "end_message() -> bytes: the message's last frame is in; inflate what the tail completes."},
    {"inflate_message", (PyCFunction)Inflater_inflate_message, METH_O,
     "inflate_message(payload) -> bytes: a whole compressed message from one frame."},
    {"reset_message", (PyCFunction)Inflater_reset_message, METH_NOARGS,
     "reset_message(): forget the message being received."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Inflater_getset[] = {
    {"max_msg_size", (getter)Inflater_get_max_msg_size, (setter)Inflater_set_max_msg_size,
     "The largest inflated message, in bytes; 0 = no limit.", NULL},
    {"inflated", (getter)Inflater_get_inflated, NULL,
     "Bytes inflated so far for the message being received.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Inflater_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "trio_ws._inflate.Inflater",
    .tp_basicsize = sizeof(Inflater),
    .tp_dealloc = (destructor)Inflater_dealloc,
    .tp_call = (ternaryfunc)Inflater_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The receiving half of permessage-deflate, on zlib (see trio_ws._deflate).",
    .tp_methods = Inflater_methods,
    .tp_getset = Inflater_getset,
    .tp_new = Inflater_new,
};

static struct PyModuleDef inflate_module = {
    PyModuleDef_HEAD_INIT,
    "trio_ws._inflate",
    "permessage-deflate's inflate on zlib (optional; see trio_ws._deflate).",
    -1,
    NULL,
};

static TrioWsInflateAPI api = {NULL, inflate_frame};

PyMODINIT_FUNC
PyInit__inflate(void)
{
    PyObject *module, *capsule;

    if (PyType_Ready(&Inflater_Type) < 0) {
        return NULL;
    }
    module = PyModule_Create(&inflate_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&Inflater_Type);
    if (PyModule_AddObject(module, "Inflater", (PyObject *)&Inflater_Type) < 0) {
        Py_DECREF(&Inflater_Type);
        goto error;
    }
    api.type = &Inflater_Type;
    capsule = PyCapsule_New(&api, TRIO_WS_INFLATE_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(module, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        goto error;
    }
    if (PyModule_AddStringConstant(module, "ZLIB_VERSION", zlibVersion()) < 0) {
        goto error;
    }
    return module;
error:
    Py_DECREF(module);
    return NULL;
}
