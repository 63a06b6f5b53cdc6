/* lru.h — an intrusive doubly-linked list ordered by last use: the owner embeds a struct
 * lru_node in its element and keeps the lock; touching moves an element to the newest end. */
#ifndef S3TORRENT_LRU_H
#define S3TORRENT_LRU_H

#include <stddef.h>

struct lru_node {
    struct lru_node *newer, *older; /* both NULL when not on a list */
};

struct lru {
    struct lru_node *newest, *oldest;
    size_t n; /* nodes on the list */
};

/* The element that embeds node (not NULL) as member. */
#define LRU_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* Makes l empty. */
void lru_init(struct lru *l);
/* Puts n at the newest end of l, unlinking it first when it is already on l. */
void lru_touch(struct lru *l, struct lru_node *n);
/* Takes n off l; a node that is on no list is left as it is. */
void lru_remove(struct lru *l, struct lru_node *n);
/* The least recently touched node, or NULL when l is empty; it stays on l. */
struct lru_node *lru_oldest(const struct lru *l);
/* Takes the least recently touched node off l and returns it, or NULL when l is empty. */
struct lru_node *lru_pop(struct lru *l);

#endif
