/* Rule 4 (scrub), one C pass per step over a text's code points: the same text as recipe.scrub_in_python
 * (pricecurate/rules/recipe.py), which defines it and which the tests compare this with. Optional: without a C
 * compiler the package installs and uses the Python path.
 *
 *   1. junk characters (: [ ] " { } 【 】) and runs of whitespace (what str.split splits at: Py_UNICODE_ISSPACE)
 *      become one space, and the ends are stripped;
 *   2. " ," becomes ",", then ",,," becomes ",", then ",," becomes "," (str.replace, each left to right);
 *   3. words (between single spaces) of 7 or more characters go when they hold a digit (str.isdigit: any script's
 *      digits, superscripts...) and are not all letters (str.isalpha), with the space before them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* The ASCII characters step 1 turns into spaces; beyond ASCII, the lenticular brackets and Unicode whitespace. */
static unsigned char ascii_blank[128];

static void fill_ascii_blank(void) {
    const char *blank = " \t\n\v\f\r\x1c\x1d\x1e\x1f:[]\"{}";
    for (const char *c = blank; *c; c++) ascii_blank[(unsigned char)*c] = 1;
}

static inline int is_blank(Py_UCS4 c) {
    return c < 128 ? ascii_blank[c] : (c == 0x3010 || c == 0x3011 || Py_UNICODE_ISSPACE(c));
}

/* Step 1: the text's words joined by single spaces into out; returns the length. */
static Py_ssize_t collapse(int kind, const void *data, Py_ssize_t n, Py_UCS4 *out) {
    Py_ssize_t length = 0, at = 0;
    while (at < n) {
        while (at < n && is_blank(PyUnicode_READ(kind, data, at))) at++;
        if (at == n) break;
        if (length) out[length++] = ' ';
        Py_UCS4 c;
        while (at < n && !is_blank(c = PyUnicode_READ(kind, data, at))) {
            out[length++] = c;
            at++;
        }
    }
    return length;
}

/* Step 2: text.replace(old, ","), in place; returns the new length. */
static Py_ssize_t replace_with_comma(Py_UCS4 *text, Py_ssize_t n, const char *old, Py_ssize_t width) {
    Py_ssize_t read = 0, write = 0;
    while (read < n) {
        Py_ssize_t k = 0;
        while (k < width && read + k < n && text[read + k] == (Py_UCS4)old[k]) k++;
        if (k == width) {
            text[write++] = ',';
            read += width;
        } else {
            text[write++] = text[read++];
        }
    }
    return write;
}

/* Step 3, in place; returns the new length. */
static Py_ssize_t drop_long_words_with_digits(Py_UCS4 *text, Py_ssize_t n) {
    Py_ssize_t read = 0, write = 0;
    int first = 1;
    for (;;) {
        Py_ssize_t start = read;
        int alpha = 1, digit = 0;
        while (read < n && text[read] != ' ') {
            alpha &= Py_UNICODE_ISALPHA(text[read]) != 0;
            digit |= Py_UNICODE_ISDIGIT(text[read]) != 0;
            read++;
        }
        Py_ssize_t size = read - start;
        if (size < 7 || alpha || !digit) {
            if (!first) text[write++] = ' ';
            memmove(text + write, text + start, sizeof(Py_UCS4) * (size_t)size);
            write += size;
            first = 0;
        }
        if (read >= n) break;
        read++; /* the space */
    }
    return write;
}

static PyObject *scrub(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "scrub: a str is needed");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_UCS4 *buffer = PyMem_Malloc(sizeof(Py_UCS4) * ((size_t)n + 1));
    if (!buffer) return PyErr_NoMemory();
    Py_ssize_t length = collapse(PyUnicode_KIND(text), PyUnicode_DATA(text), n, buffer);
    length = replace_with_comma(buffer, length, " ,", 2);
    length = replace_with_comma(buffer, length, ",,,", 3);
    length = replace_with_comma(buffer, length, ",,", 2);
    length = drop_long_words_with_digits(buffer, length);
    PyObject *result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buffer, length);
    PyMem_Free(buffer);
    return result;
}

static PyMethodDef methods[] = {
    {"scrub", scrub, METH_O, "recipe.scrub of any str (see pricecurate/rules/recipe.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scrub", NULL, -1, methods};

PyMODINIT_FUNC PyInit__scrub(void) {
    fill_ascii_blank();
    return PyModule_Create(&module);
}
