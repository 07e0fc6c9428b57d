/* What trio_ws._inflate lends trio_ws._speedups, through the capsule
 * "trio_ws._inflate._C_API" (see _inflate.c). */
#ifndef TRIO_WS_INFLATE_H
#define TRIO_WS_INFLATE_H

#define TRIO_WS_INFLATE_CAPSULE "trio_ws._inflate._C_API"

typedef struct {
    /* trio_ws._inflate.Inflater */
    PyTypeObject *type;
    /* A whole message from one frame's payload (still in the read buffer): str when text,
     * else bytes; when text is not UTF-8, its bytes and *bad = 1. NULL with an exception
     * (the violation, or MemoryError) on failure. */
    PyObject *(*inflate_frame)(PyObject *inflater, const char *payload, Py_ssize_t length,
                               int text, int *bad);
} TrioWsInflateAPI;

#endif
