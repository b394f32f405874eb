/* Rule 4 (scrub), one C pass per step: the same text as recipe.scrub_in_python (pricecurate/rules/recipe.py),
 * which defines it and which the tests compare this with. Optional: without a C compiler the package installs and
 * uses the Python path. An ASCII text (nearly all) is scrubbed on its bytes:
 *
 *   1. junk characters (: [ ] " { } and the separators 0x1c-0x1f) and whitespace runs become one space, and the
 *      ends are stripped (bytes.translate then split and join);
 *   2. " ," becomes ",", then ",,," becomes ",", then ",," becomes "," (str.replace, each left to right);
 *   3. words (between single spaces) of 7 or more characters that hold a digit 0-9 go, with the space before them
 *      (the regular expression " (?=[^ ]{7})[^ 0-9]*+[0-9][^ ]*+" over " " + text, then [1:]).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* bytes.split's whitespace, and the junk translated to spaces before it */
static unsigned char blank[256];

static void fill_blank(void) {
    const char *junk = " \t\n\v\f\r\x1c\x1d\x1e\x1f:[]\"{}";
    for (const char *c = junk; *c; c++) blank[(unsigned char)*c] = 1;
}

#define is_blank(c) (blank[(unsigned char)(c)])

/* Step 1: words of src joined by single spaces into out; returns the length. */
static Py_ssize_t collapse(const unsigned char *src, Py_ssize_t n, char *out) {
    Py_ssize_t length = 0, at = 0;
    while (at < n) {
        while (at < n && is_blank(src[at])) at++;
        if (at == n) break;
        if (length) out[length++] = ' ';
        while (at < n && !is_blank(src[at])) out[length++] = (char)src[at++];
    }
    return length;
}

/* text.replace(old, ","), in place, for old = " ," or a run of commas: returns the new length. */
static Py_ssize_t replace_with_comma(char *text, Py_ssize_t n, const char *old, Py_ssize_t width) {
    Py_ssize_t read = 0, write = 0;
    while (read < n) {
        if (text[read] == old[0] && read + width <= n && memcmp(text + read, old, (size_t)width) == 0) {
            text[write++] = ',';
            read += width;
        } else {
            text[write++] = text[read++];
        }
    }
    return write;
}

/* Step 3, in place: returns the new length. */
static Py_ssize_t drop_long_words_with_digits(char *text, Py_ssize_t n) {
    Py_ssize_t read = 0, write = 0;
    int first = 1;
    for (;;) {
        Py_ssize_t start = read;
        int digit = 0;
        while (read < n && text[read] != ' ') {
            digit |= text[read] >= '0' && text[read] <= '9';
            read++;
        }
        Py_ssize_t length = read - start;
        if (!(length >= 7 && digit)) {
            if (!first) text[write++] = ' ';
            memmove(text + write, text + start, (size_t)length);
            write += length;
            first = 0;
        }
        if (read >= n) break;
        read++; /* the space */
    }
    return write;
}

/* The same steps on the code points of any str, for the texts that are not ASCII: whitespace is what str.split
 * splits at (Py_UNICODE_ISSPACE), junk adds the lenticular brackets, and a long word stays when it is all letters
 * (str.isalpha) or holds no digit (str.isdigit: any script's digits, superscripts...), as recipe.scrub's
 * non-ASCII path states it. */
static inline int is_wide_blank(Py_UCS4 c) {
    return c < 128 ? blank[c] : (c == 0x3010 || c == 0x3011 || Py_UNICODE_ISSPACE(c));
}

static Py_ssize_t wide_replace_with_comma(Py_UCS4 *text, Py_ssize_t n, const char *old, Py_ssize_t width) {
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

static PyObject *scrub_wide(PyObject *text) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), length = 0, at = 0;
    Py_UCS4 *buffer = PyMem_Malloc(sizeof(Py_UCS4) * ((size_t)n + 1));
    if (!buffer) return PyErr_NoMemory();
    while (at < n) {
        while (at < n && is_wide_blank(PyUnicode_READ(kind, data, at))) at++;
        if (at == n) break;
        if (length) buffer[length++] = ' ';
        Py_UCS4 c;
        while (at < n && !is_wide_blank(c = PyUnicode_READ(kind, data, at))) {
            buffer[length++] = c;
            at++;
        }
    }
    length = wide_replace_with_comma(buffer, length, " ,", 2);
    length = wide_replace_with_comma(buffer, length, ",,,", 3);
    length = wide_replace_with_comma(buffer, length, ",,", 2);
    Py_ssize_t read = 0, write = 0;
    int first = 1;
    for (;;) {
        Py_ssize_t start = read;
        int alpha = 1, digit = 0;
        while (read < length && buffer[read] != ' ') {
            alpha &= Py_UNICODE_ISALPHA(buffer[read]) != 0;
            digit |= Py_UNICODE_ISDIGIT(buffer[read]) != 0;
            read++;
        }
        Py_ssize_t size = read - start;
        if (size < 7 || alpha || !digit) {
            if (!first) buffer[write++] = ' ';
            memmove(buffer + write, buffer + start, sizeof(Py_UCS4) * (size_t)size);
            write += size;
            first = 0;
        }
        if (read >= length) break;
        read++; /* the space */
    }
    PyObject *result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buffer, write);
    PyMem_Free(buffer);
    return result;
}

static PyObject *scrub_ascii(PyObject *text) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    char *buffer = PyMem_Malloc((size_t)n + 1);
    if (!buffer) return PyErr_NoMemory();
    Py_ssize_t length = collapse(PyUnicode_DATA(text), n, buffer);
    length = replace_with_comma(buffer, length, " ,", 2);
    length = replace_with_comma(buffer, length, ",,,", 3);
    length = replace_with_comma(buffer, length, ",,", 2);
    length = drop_long_words_with_digits(buffer, length);
    PyObject *result = PyUnicode_DecodeASCII(buffer, length, NULL);
    PyMem_Free(buffer);
    return result;
}

static PyObject *scrub(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "scrub: a str is needed");
        return NULL;
    }
    return PyUnicode_IS_ASCII(text) ? scrub_ascii(text) : scrub_wide(text);
}

static PyMethodDef methods[] = {
    {"scrub", scrub, METH_O, "recipe.scrub of any str (see pricecurate/rules/recipe.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scrub", NULL, -1, methods};

PyMODINIT_FUNC PyInit__scrub(void) {
    fill_blank();
    return PyModule_Create(&module);
}
