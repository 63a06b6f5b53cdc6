/* lru.c — the intrusive least-recently-used list: constant-time touch, remove and pop, no
 * allocation; callers walk it from lru_oldest through each node's newer link. */
#include "s3torrent/lru.h"

void lru_init(struct lru *l)
{
    l->newest = l->oldest = NULL;
    l->n = 0;
}

void lru_remove(struct lru *l, struct lru_node *n)
{
    if (n->newer == NULL && n->older == NULL && l->newest != n)
        return; /* on no list */
    if (n->newer)
        n->newer->older = n->older;
    else
        l->newest = n->older;
    if (n->older)
        n->older->newer = n->newer;
    else
        l->oldest = n->newer;
    n->newer = n->older = NULL;
    l->n--;
}

void lru_touch(struct lru *l, struct lru_node *n)
{
    if (l->newest == n)
        return;
    lru_remove(l, n);
    n->older = l->newest;
    if (l->newest)
        l->newest->newer = n;
    l->newest = n;
    if (l->oldest == NULL)
        l->oldest = n;
    l->n++;
}

struct lru_node *lru_oldest(const struct lru *l)
{
    return l->oldest;
}

struct lru_node *lru_pop(struct lru *l)
{
    struct lru_node *n = l->oldest;
    if (n)
        lru_remove(l, n);
    return n;
}
