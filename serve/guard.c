/* guard.c — the header deadline (guard.h, docs/DESIGN.md §14). */
#include "guard.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

/* A connection, from its start to its close. waiting: its next request's head is not in yet. */
struct guard_conn {
    int fd;
    bool waiting, cut;
    struct timespec since;
    struct guard_conn *prev, *next;
};

struct guard {
    unsigned timeout_s;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    struct guard_conn *conns;
    uint64_t cut;
    pthread_t thread;
};

static struct timespec now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static double age_s(const struct timespec *t0, const struct timespec *t)
{
    return (double)(t->tv_sec - t0->tv_sec) + (double)(t->tv_nsec - t0->tv_nsec) / 1e9;
}

/* Every quarter of the deadline (at most a second), the connections whose head is late are shut
 * down. The lock is held while shutting down, and guard_on_connection takes it before
 * libmicrohttpd closes the socket, so the descriptor shut down is still this connection's. */
static void *watch(void *arg)
{
    struct guard *g = arg;
    long step_ms = g->timeout_s >= 4 ? 1000 : (long)g->timeout_s * 250;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += step_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
        struct timespec t = now_mono();
        for (struct guard_conn *c = g->conns; c; c = c->next)
            if (c->waiting && !c->cut && age_s(&c->since, &t) >= (double)g->timeout_s) {
                shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
                g->cut++;
            }
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

struct guard *guard_new(unsigned header_timeout_s)
{
    struct guard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->timeout_s = header_timeout_s ? header_timeout_s : 1;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    if (pthread_create(&g->thread, NULL, watch, g) != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    return g;
}

void guard_free(struct guard *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    while (g->conns) { /* none after MHD_stop_daemon; freed all the same */
        struct guard_conn *c = g->conns;
        g->conns = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

void guard_on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe)
{
    struct guard *g = cls;
    struct guard_conn *c = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL || (c = calloc(1, sizeof(*c))) == NULL)
            return; /* not guarded: the idle timeout still holds */
        c->fd = ci->connect_fd;
        c->waiting = true;
        c->since = now_mono();
        pthread_mutex_lock(&g->lock);
        c->next = g->conns;
        if (g->conns)
            g->conns->prev = c;
        g->conns = c;
        pthread_mutex_unlock(&g->lock);
        *socket_context = c;
        return;
    }
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->lock);
    free(c);
    *socket_context = NULL;
}

static void set_waiting(struct guard *g, struct MHD_Connection *con, bool waiting)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct guard_conn *c = ci ? ci->socket_context : NULL;
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    c->waiting = waiting;
    c->since = now_mono();
    pthread_mutex_unlock(&g->lock);
}

void guard_headers_done(struct guard *g, struct MHD_Connection *con)
{
    set_waiting(g, con, false);
}

void guard_request_done(struct guard *g, struct MHD_Connection *con)
{
    set_waiting(g, con, true);
}

uint64_t guard_cut(struct guard *g)
{
    pthread_mutex_lock(&g->lock);
    uint64_t n = g->cut;
    pthread_mutex_unlock(&g->lock);
    return n;
}
