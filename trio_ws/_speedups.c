/* trio_ws._speedups: the WebSocket payload mask (RFC 6455 section 5.3) as a C loop.
 *
 * Optional: trio_ws._framing falls back to pure Python when this module is missing.
 * apply_mask(data, mask) -> bytes, where data is any C-contiguous buffer and mask is
 * exactly 4 bytes; mask_frame(head, data, mask) -> bytes: head, mask and the masked data in
 * one new object (a whole frame, without a copy to join its header to its payload).
 *
 * scan_messages(buf, pos, out, inflate, max_msg_size, msg_type, text_kind, binary_kind)
 *   -> (pos, frames, bad_text): the parser's common case (trio_ws._protocol) as a C loop. From
 *   buf[pos:], each whole, final, unmasked TEXT or BINARY frame with RSV bits 0 (or RSV1 when
 *   `inflate` is given: permessage-deflate) and a minimally encoded length becomes one message
 *   appended to `out`: msg_type(kind, data, None), data inflated by `inflate(payload)` when
 *   compressed, TEXT decoded as strict UTF-8. It stops at the first frame that is anything
 *   else (a control frame, a fragment, an incomplete frame, a header the rules reject, an
 *   uncompressed payload above max_msg_size when that is not 0), where the Python parser
 *   takes over, and returns where it stopped and how many frames it read. A TEXT payload that
 *   is not UTF-8 stops the loop after its frame, returned as bad_text for the Python parser
 *   to raise its violation (1007); exceptions of `inflate` propagate. When `inflate` is a
 *   trio_ws._inflate.Inflater (and that module was built), its C entry inflates the payload
 *   where it lies in `buf` and decodes the text (module constant inflate_linked: 1);
 *   otherwise `inflate` is called with the payload as bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_inflate.h"

/* trio_ws._inflate's C entry, when that module was built: scan_messages then inflates an
 * Inflater's frames without a call through Python and without copying the payload first. */
static const TrioWsInflateAPI *inflate_api = NULL;

static void
xor_mask(const unsigned char *src, const unsigned char *key, unsigned char *dst, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    uint64_t key8, word;
    unsigned char k8[8];

    for (int j = 0; j < 8; j++) {
        k8[j] = key[j & 3];
    }
    memcpy(&key8, k8, 8);
    for (; i + 8 <= n; i += 8) {
        memcpy(&word, src + i, 8);
        word ^= key8;
        memcpy(dst + i, &word, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
}

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments (data, mask)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "the mask must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    if (data.len >= 65536) {
        /* Big payloads: let other threads run meanwhile. */
        Py_BEGIN_ALLOW_THREADS
        xor_mask((const unsigned char *)data.buf, (const unsigned char *)mask.buf,
                 (unsigned char *)PyBytes_AS_STRING(result), data.len);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask((const unsigned char *)data.buf, (const unsigned char *)mask.buf,
                 (unsigned char *)PyBytes_AS_STRING(result), data.len);
    }
done:
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
mask_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer head, data, mask;
    PyObject *result = NULL;
    unsigned char *out;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "mask_frame() takes exactly 3 arguments (head, data, mask)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &head, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&head);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&head);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "the mask must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, head.len + 4 + data.len);
    if (result == NULL) {
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    memcpy(out, head.buf, head.len);
    memcpy(out + head.len, mask.buf, 4);
    out += head.len + 4;
    if (data.len >= 65536) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask((const unsigned char *)data.buf, (const unsigned char *)mask.buf, out, data.len);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask((const unsigned char *)data.buf, (const unsigned char *)mask.buf, out, data.len);
    }
done:
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    PyBuffer_Release(&head);
    return result;
}

static PyObject *
scan_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    PyObject *out, *inflate, *text_kind, *binary_kind, *result = NULL, *bad = NULL;
    PyTypeObject *msg_type;
    Py_ssize_t pos, n, frames = 0;
    long long max_msg_size;
    const unsigned char *buf;

    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "scan_messages() takes exactly 8 arguments");
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    out = args[2];
    inflate = args[3] == Py_None ? NULL : args[3];
    max_msg_size = PyLong_AsLongLong(args[4]);
    if (max_msg_size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_Check(out) || !PyType_Check(args[5])
        || !PyType_IsSubtype((PyTypeObject *)args[5], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "scan_messages(): out must be a list, msg_type a tuple type");
        return NULL;
    }
    msg_type = (PyTypeObject *)args[5];
    text_kind = args[6];
    binary_kind = args[7];
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    buf = (const unsigned char *)view.buf;
    n = view.len;
    if (pos < 0 || pos > n) {
        PyErr_SetString(PyExc_ValueError, "scan_messages(): pos out of range");
        goto done;
    }
    while (n - pos >= 2) {
        unsigned char b0 = buf[pos], b1 = buf[pos + 1];
        int opcode = b0 & 0x0F, rsv = b0 & 0x70;
        unsigned long long length = b1 & 0x7F;
        Py_ssize_t start;
        PyObject *payload, *data, *msg;

        if (!(b0 & 0x80) || (opcode != 1 && opcode != 2) || (b1 & 0x80)) {
            break; /* a fragment, a control frame, a masked frame: Python's */
        }
        if (rsv != 0 && !(rsv == 0x40 && inflate != NULL)) {
            break;
        }
        if (length == 126) {
            if (n - pos < 4) {
                break;
            }
            length = ((unsigned long long)buf[pos + 2] << 8) | buf[pos + 3];
            if (length < 126) {
                break;
            }
            start = pos + 4;
        }
        else if (length == 127) {
            if (n - pos < 10) {
                break;
            }
            length = 0;
            for (int i = 2; i < 10; i++) {
                length = (length << 8) | buf[pos + i];
            }
            if ((length >> 63) || length < 0x10000) {
                break;
            }
            start = pos + 10;
        }
        else {
            start = pos + 2;
        }
        if (length > (unsigned long long)(n - start)) {
            break; /* not all in the buffer */
        }
        if (rsv == 0 && max_msg_size > 0 && length > (unsigned long long)max_msg_size) {
            break;
        }
        if (rsv && inflate_api != NULL && Py_TYPE(inflate) == inflate_api->type) {
            int bad_text;

            pos = start + (Py_ssize_t)length;
            frames++;
            data = inflate_api->inflate_frame(inflate, (const char *)buf + start,
                                              (Py_ssize_t)length, opcode == 1, &bad_text);
            if (data == NULL) {
                goto done;
            }
            if (bad_text) {
                bad = data; /* for the Python parser to raise its violation */
                break;
            }
            goto append;
        }
        payload = PyBytes_FromStringAndSize((const char *)buf + start, (Py_ssize_t)length);
        if (payload == NULL) {
            goto done;
        }
        pos = start + (Py_ssize_t)length;
        frames++;
        if (rsv) {
            data = PyObject_CallOneArg(inflate, payload);
            Py_DECREF(payload);
            if (data == NULL) {
                goto done;
            }
            if (!PyBytes_Check(data)) {
                Py_DECREF(data);
                PyErr_SetString(PyExc_TypeError, "scan_messages(): inflate must return bytes");
                goto done;
            }
        }
        else {
            data = payload;
        }
        if (opcode == 1) {
            PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(data),
                                                  PyBytes_GET_SIZE(data), "strict");
            if (text == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    Py_DECREF(data);
                    goto done;
                }
                PyErr_Clear();
                bad = data; /* for the Python parser to raise its violation */
                break;
            }
            Py_DECREF(data);
            data = text;
        }
    append:
        /* msg_type(kind, data, None), as tuple.__new__ makes a tuple subclass' instance. */
        msg = msg_type->tp_alloc(msg_type, 3);
        if (msg == NULL) {
            Py_DECREF(data);
            goto done;
        }
        Py_INCREF(opcode == 1 ? text_kind : binary_kind);
        PyTuple_SET_ITEM(msg, 0, opcode == 1 ? text_kind : binary_kind);
        PyTuple_SET_ITEM(msg, 1, data);
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(msg, 2, Py_None);
        if (PyList_Append(out, msg) < 0) {
            Py_DECREF(msg);
            goto done;
        }
        Py_DECREF(msg);
    }
    result = Py_BuildValue("(nnO)", pos, frames, bad != NULL ? bad : Py_None);
done:
    Py_XDECREF(bad);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"scan_messages", (PyCFunction)(void (*)(void))scan_messages, METH_FASTCALL,
     "scan_messages(buf, pos, out, inflate, max_msg_size, msg_type, text_kind, binary_kind)"
     " -> (pos, frames, bad_text): whole simple data frames into messages."},
    {"mask_frame", (PyCFunction)(void (*)(void))mask_frame, METH_FASTCALL,
     "mask_frame(head, data, mask) -> bytes: head + mask + data XOR the mask repeated."},
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask) -> bytes: data XOR the 4-byte mask repeated."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "trio_ws._speedups",
    "C speed-ups for trio_ws (optional).",
    -1,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module = PyModule_Create(&speedups_module), *inflate_module;

    if (module == NULL) {
        return NULL;
    }
    if (!getenv("TRIO_WS_NO_EXTENSIONS")) {
        /* Optional: without it, an Inflater is called as the Python callable it also is.
         * (PyCapsule_Import would not import the submodule, only look it up.) */
        inflate_module = PyImport_ImportModule("trio_ws._inflate");
        if (inflate_module != NULL) {
            inflate_api = PyCapsule_Import(TRIO_WS_INFLATE_CAPSULE, 0);
            Py_DECREF(inflate_module);
        }
        if (inflate_api == NULL) {
            PyErr_Clear();
        }
    }
    if (PyModule_AddIntConstant(module, "inflate_linked", inflate_api != NULL) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
