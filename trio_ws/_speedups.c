/* trio_ws._speedups: the WebSocket payload mask (RFC 6455 section 5.3) as a C loop.
 *
 * Optional: trio_ws._framing falls back to pure Python when this module is missing.
 * apply_mask(data, mask) -> bytes, where data is any C-contiguous buffer and mask is
 * exactly 4 bytes; mask_frame(head, data, mask) -> bytes: head, mask and the masked data in
 * one new object (a whole frame, without a copy to join its header to its payload).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

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

static PyMethodDef speedups_methods[] = {
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
    return PyModule_Create(&speedups_module);
}
