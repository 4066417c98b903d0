/* Binary heap (see heap.h; push and pop are inline there). */
#include "base/heap.h"

void imp_heap_free(imp_heap *h) {
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
