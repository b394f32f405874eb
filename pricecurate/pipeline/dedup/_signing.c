/* MinHash signatures of a batch of texts, in one pass over their bytes: the same values as the numpy path of
 * pricecurate/pipeline/dedup/minhash.py (word_hashes, shingle_hashes, _min_hashes), which defines them and which
 * the tests compare this with. Optional: without a C compiler the package installs and uses the numpy path.
 *
 * signatures(data, starts, ngram, a, b, out)
 *   data    the texts' bytes, lowercased and punctuation blanked, joined by a newline (minhash._batch_bytes)
 *   starts  int64, each text's first byte in data (increasing)
 *   a, b    uint64, the permutations' multipliers and offsets
 *   out     uint32, writable, len(starts) x len(a), C order
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

static const uint64_t BYTE_PRIME = 0x100000001B3ULL;
static const uint64_t SHINGLE_PRIME = 1099511628211ULL;

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* The ASCII whitespace str.split splits at: these end a word. */
static inline int is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* The hashes of the words in data[begin:end], into words; returns how many. */
static Py_ssize_t hash_words(const unsigned char *data, Py_ssize_t begin, Py_ssize_t end, uint64_t *words) {
    Py_ssize_t count = 0, at = begin;
    while (at < end) {
        while (at < end && is_space(data[at])) at++;
        if (at == end) break;
        uint64_t sum = 0, power = 1, length = 0;
        while (at < end && !is_space(data[at])) {
            sum += ((uint64_t)data[at] + 1) * power;
            power *= BYTE_PRIME;
            length++;
            at++;
        }
        words[count++] = mix(sum ^ length);
    }
    return count;
}

/* The text's shingles' hashes, into shingles; returns how many (a text of fewer than ngram words is one). */
static Py_ssize_t hash_shingles(const uint64_t *words, Py_ssize_t count, Py_ssize_t ngram, uint64_t *shingles) {
    Py_ssize_t width = count < ngram ? count : ngram;
    Py_ssize_t total = count - ngram + 1 > 1 ? count - ngram + 1 : 1;
    for (Py_ssize_t j = 0; j < total; j++) {
        uint64_t hash = 0;
        for (Py_ssize_t k = 0; k < width; k++) hash = hash * SHINGLE_PRIME + words[j + k];
        shingles[j] = mix(hash ^ (uint64_t)width);
    }
    return total;
}

/* The minimums are independent per permutation: compiled also for AVX2 and AVX-512 (64-bit multiply and minimum
 * in 8 lanes), the best the CPU has picked at load time, where the compiler can (GCC or Clang on x86-64 Linux). */
#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define PER_CPU __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PER_CPU
#endif

PER_CPU static void min_hash(const uint64_t *restrict shingles, Py_ssize_t total, const uint64_t *restrict a,
                             const uint64_t *restrict b, Py_ssize_t perms, uint64_t *restrict lowest,
                             uint32_t *restrict out) {
    for (Py_ssize_t i = 0; i < perms; i++) lowest[i] = UINT64_MAX;
    for (Py_ssize_t j = 0; j < total; j++) {
        uint64_t x = shingles[j];
        for (Py_ssize_t i = 0; i < perms; i++) {
            uint64_t value = a[i] * x + b[i];
            lowest[i] = value < lowest[i] ? value : lowest[i];
        }
    }
    for (Py_ssize_t i = 0; i < perms; i++) out[i] = (uint32_t)(lowest[i] >> 32);
}

static PyObject *signatures(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, starts, a, b, out;
    Py_ssize_t ngram;
    if (!PyArg_ParseTuple(args, "y*y*ny*y*w*", &data, &starts, &ngram, &a, &b, &out)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t texts = starts.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t perms = a.len / (Py_ssize_t)sizeof(uint64_t);
    uint64_t *words = NULL, *shingles = NULL, *lowest = NULL;
    if (ngram < 1 || b.len != a.len || out.len != texts * perms * (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "signatures: ngram < 1, or a, b and out do not fit together");
        goto done;
    }
    /* A text has at most (bytes + 1) / 2 words, and as many shingles as words (or one). */
    words = malloc(sizeof(uint64_t) * (data.len / 2 + 2));
    shingles = malloc(sizeof(uint64_t) * (data.len / 2 + 2));
    lowest = malloc(sizeof(uint64_t) * (perms + 1));
    if (!words || !shingles || !lowest) {
        PyErr_NoMemory();
        goto done;
    }
    const unsigned char *bytes = data.buf;
    const int64_t *first = starts.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 0; t < texts; t++) {
        Py_ssize_t begin = (Py_ssize_t)first[t], end = t + 1 < texts ? (Py_ssize_t)first[t + 1] : data.len;
        if (begin < 0) begin = 0;
        if (end > data.len) end = data.len;
        Py_ssize_t count = begin < end ? hash_words(bytes, begin, end, words) : 0;
        Py_ssize_t total = hash_shingles(words, count, ngram, shingles);
        min_hash(shingles, total, a.buf, b.buf, perms, lowest, (uint32_t *)out.buf + t * perms);
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    free(words);
    free(shingles);
    free(lowest);
    PyBuffer_Release(&data);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"signatures", signatures, METH_VARARGS, "MinHash signatures of a batch's bytes (see minhash.signatures)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_signing", NULL, -1, methods};

PyMODINIT_FUNC PyInit__signing(void) { return PyModule_Create(&module); }
