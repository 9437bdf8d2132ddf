/*
 * The fan-out reference in plain C over libuv; see cfanout.h for what it does and why.
 *
 * Two loop threads (sender, receivers), each driven by commands from the controlling thread
 * through a uv_async_t; the controlling thread waits for their effects on a condition variable.
 * Everything a loop owns is touched only by that loop's thread.
 */
#include "cfanout.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

enum {
    /* Frames are packed into buffers of this size, one uv_write each (as WriteBufferPool.bufferSize). */
    BATCH = 64 * 1024,
    /* Writing pauses above this many bytes in flight per connection (TCPConnection.highWaterMark)… */
    HIGH_WATER = 8 * 1024 * 1024,
    /* …and resumes once they drain to this (TCPConnection.lowWaterMark). */
    LOW_WATER = 2 * 1024 * 1024,
    /* Bytes offered to each read, at least (TCPConnection.readChunk). */
    READ_CHUNK = 64 * 1024,
    /* The receive buffer; a frame never exceeds BATCH, so a partial frame leaves a full chunk free. */
    READ_CAPACITY = 2 * READ_CHUNK,
    MAX_RECEIVERS = 1024,
};

typedef struct cfanout_sconn sconn;

/* A write request and the batch it carries, recycled through a free list. */
typedef struct wbuf {
    uv_write_t req;
    struct wbuf *next;
    sconn *conn;
    size_t len;
    char data[BATCH];
} wbuf;

/* The sending end of one connection. */
struct cfanout_sconn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    cfanout *fanout;
    long remaining;  /* frames still to write in this run */
    size_t inflight; /* bytes handed to uv_write and not yet called back */
    int inited;
};

/* The receiving end of one connection. */
typedef struct rconn {
    uv_tcp_t tcp;
    cfanout *fanout;
    char *buf;
    size_t start, end; /* unparsed bytes are buf[start..<end] */
    long count;        /* frames counted in this run */
    uint64_t sum;      /* first body byte of every frame, ever */
    int done;
    int inited;
} rconn;

typedef enum { CMD_NONE, CMD_LISTEN, CMD_CONNECT, CMD_ARM, CMD_SEND, CMD_CLOSE } command;

typedef struct lthread {
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    cfanout *fanout;
    int started;
    int close_rc;
    /* Guarded by fanout->mutex. */
    command cmd;
    long arg;
} lthread;

struct cfanout {
    int receivers;
    int frame_size;

    /* Shared with the controlling thread, guarded by mutex. */
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int port;
    int listening;
    int connected;
    int accepted;
    int armed;
    int all_done;
    int failed;

    lthread sender;
    lthread receiver;

    /* Sender loop only. */
    sconn *sconns;
    wbuf *free_bufs;
    char *payload;

    /* Receiver loop only. */
    uv_tcp_t listener;
    int listener_inited;
    rconn *rconns;
    int naccepted;
    long target;
    int ndone;
};

/* MARK: Signalling between the loops and the controlling thread */

#define SIGNAL(f, statement)                  \
    do {                                      \
        pthread_mutex_lock(&(f)->mutex);      \
        statement;                            \
        pthread_cond_broadcast(&(f)->cond);   \
        pthread_mutex_unlock(&(f)->mutex);    \
    } while (0)

/* Waits until `expr` holds or a loop failed; evaluates to 1 when `expr` holds. */
#define WAIT_UNTIL(f, expr, ok)                                       \
    do {                                                              \
        pthread_mutex_lock(&(f)->mutex);                              \
        while (!(expr) && !(f)->failed) pthread_cond_wait(&(f)->cond, &(f)->mutex); \
        ok = (expr) && !(f)->failed;                                  \
        pthread_mutex_unlock(&(f)->mutex);                            \
    } while (0)

static void fail(cfanout *f, const char *what, int rc) {
    fprintf(stderr, "cfanout: %s: %s\n", what, rc ? uv_strerror(rc) : "failed");
    SIGNAL(f, f->failed = 1);
}

static void send_command(lthread *t, command cmd, long arg) {
    pthread_mutex_lock(&t->fanout->mutex);
    t->cmd = cmd;
    t->arg = arg;
    pthread_mutex_unlock(&t->fanout->mutex);
    uv_async_send(&t->wake);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* MARK: Sender */

static wbuf *take_buf(cfanout *f) {
    wbuf *b = f->free_bufs;
    if (b) {
        f->free_bufs = b->next;
        return b;
    }
    return malloc(sizeof(wbuf));
}

static void give_buf(cfanout *f, wbuf *b) {
    b->next = f->free_bufs;
    f->free_bufs = b;
}

static void pump(sconn *c);

static void on_write(uv_write_t *req, int status) {
    wbuf *b = (wbuf *)req;
    sconn *c = b->conn;
    cfanout *f = c->fanout;
    c->inflight -= b->len;
    give_buf(f, b);
    if (status < 0) {
        if (status != UV_ECANCELED) fail(f, "write", status);
        return;
    }
    if (c->remaining > 0 && c->inflight <= LOW_WATER) pump(c);
}

/* Writes whole 64 KiB batches of frames until this run's frames are all written or too much is
 * in flight. */
static void pump(sconn *c) {
    cfanout *f = c->fanout;
    const size_t frame_len = 4 + (size_t)f->frame_size;
    const long per_batch = (long)(BATCH / frame_len);
    const uint32_t prefix = htonl((uint32_t)f->frame_size);
    while (c->remaining > 0 && c->inflight <= HIGH_WATER) {
        wbuf *b = take_buf(f);
        if (!b) {
            fail(f, "malloc", 0);
            return;
        }
        long n = c->remaining < per_batch ? c->remaining : per_batch;
        char *p = b->data;
        for (long i = 0; i < n; i++) {
            memcpy(p, &prefix, 4);
            memcpy(p + 4, f->payload, (size_t)f->frame_size);
            p += frame_len;
        }
        b->len = (size_t)(p - b->data);
        b->conn = c;
        uv_buf_t desc = uv_buf_init(b->data, (unsigned)b->len);
        int rc = uv_write(&b->req, (uv_stream_t *)&c->tcp, &desc, 1, on_write);
        if (rc < 0) {
            give_buf(f, b);
            fail(f, "uv_write", rc);
            return;
        }
        c->inflight += b->len;
        c->remaining -= n;
    }
}

static void on_connect(uv_connect_t *req, int status) {
    sconn *c = req->data;
    if (status < 0) {
        fail(c->fanout, "connect", status);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    SIGNAL(c->fanout, c->fanout->connected++);
}

static void sender_connect(cfanout *f) {
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", f->port, &addr);
    for (int i = 0; i < f->receivers; i++) {
        sconn *c = &f->sconns[i];
        c->fanout = f;
        int rc = uv_tcp_init(&f->sender.loop, &c->tcp);
        if (rc < 0) {
            fail(f, "uv_tcp_init", rc);
            return;
        }
        c->inited = 1;
        c->tcp.data = c;
        c->connect_req.data = c;
        rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&addr, on_connect);
        if (rc < 0) {
            fail(f, "uv_tcp_connect", rc);
            return;
        }
    }
}

static void sender_send(cfanout *f, long frames) {
    for (int i = 0; i < f->receivers; i++) f->sconns[i].remaining = frames;
    for (int i = 0; i < f->receivers; i++) pump(&f->sconns[i]);
}

/* MARK: Receivers */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    rconn *c = handle->data;
    if (c->start == c->end) c->start = c->end = 0;
    if (READ_CAPACITY - c->end < READ_CHUNK) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    *buf = uv_buf_init(c->buf + c->end, (unsigned)(READ_CAPACITY - c->end));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    rconn *c = stream->data;
    cfanout *f = c->fanout;
    if (nread < 0) {
        if (nread != UV_EOF) fail(f, "read", (int)nread);
        if (!uv_is_closing((uv_handle_t *)stream)) uv_close((uv_handle_t *)stream, NULL);
        return;
    }
    c->end += (size_t)nread;
    const unsigned char *base = (const unsigned char *)c->buf;
    size_t offset = c->start;
    const size_t end = c->end;
    long count = 0;
    uint64_t sum = 0;
    while (end - offset >= 4) {
        uint32_t be;
        memcpy(&be, base + offset, 4);
        const size_t length = ntohl(be);
        if (length > BATCH - 4) {
            fail(f, "frame too large", 0);
            uv_close((uv_handle_t *)stream, NULL);
            return;
        }
        if (end - offset - 4 < length) break;
        if (length > 0) sum += base[offset + 4];
        offset += 4 + length;
        count++;
    }
    c->start = offset;
    c->count += count;
    c->sum += sum;
    if (!c->done && c->count >= f->target) {
        c->done = 1;
        if (++f->ndone == f->receivers) SIGNAL(f, f->all_done = 1);
    }
}

static void on_connection(uv_stream_t *server, int status) {
    cfanout *f = server->data;
    if (status < 0) {
        fail(f, "accept", status);
        return;
    }
    if (f->naccepted >= f->receivers) {
        fail(f, "accept: more connections than receivers", 0);
        return;
    }
    rconn *c = &f->rconns[f->naccepted++];
    c->fanout = f;
    int rc = uv_tcp_init(&f->receiver.loop, &c->tcp);
    if (rc < 0) {
        fail(f, "uv_tcp_init", rc);
        return;
    }
    c->inited = 1;
    c->tcp.data = c;
    if ((rc = uv_accept(server, (uv_stream_t *)&c->tcp)) < 0) {
        fail(f, "uv_accept", rc);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->buf = malloc(READ_CAPACITY);
    if (!c->buf) {
        fail(f, "malloc", 0);
        return;
    }
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) < 0) {
        fail(f, "uv_read_start", rc);
        return;
    }
    SIGNAL(f, f->accepted++);
}

static void receiver_listen(cfanout *f) {
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    int rc = uv_tcp_init(&f->receiver.loop, &f->listener);
    if (rc < 0) {
        fail(f, "uv_tcp_init", rc);
        return;
    }
    f->listener_inited = 1;
    f->listener.data = f;
    if ((rc = uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0)) < 0) {
        fail(f, "bind", rc);
        return;
    }
    if ((rc = uv_listen((uv_stream_t *)&f->listener, 1024, on_connection)) < 0) {
        fail(f, "listen", rc);
        return;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if ((rc = uv_tcp_getsockname(&f->listener, (struct sockaddr *)&bound, &len)) < 0) {
        fail(f, "getsockname", rc);
        return;
    }
    SIGNAL(f, { f->port = ntohs(((struct sockaddr_in *)&bound)->sin_port); f->listening = 1; });
}

static void receiver_arm(cfanout *f, long frames) {
    f->target = frames;
    f->ndone = 0;
    for (int i = 0; i < f->naccepted; i++) {
        f->rconns[i].count = 0;
        f->rconns[i].done = 0;
    }
    SIGNAL(f, f->armed = 1);
}

/* MARK: Loop threads */

static void close_if_open(uv_handle_t *handle) {
    if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

static void close_all(lthread *t) {
    cfanout *f = t->fanout;
    if (t == &f->sender) {
        for (int i = 0; i < f->receivers; i++)
            if (f->sconns[i].inited) close_if_open((uv_handle_t *)&f->sconns[i].tcp);
    } else {
        if (f->listener_inited) close_if_open((uv_handle_t *)&f->listener);
        for (int i = 0; i < f->naccepted; i++)
            if (f->rconns[i].inited) close_if_open((uv_handle_t *)&f->rconns[i].tcp);
    }
    uv_close((uv_handle_t *)&t->wake, NULL);
}

static void on_wake(uv_async_t *async) {
    lthread *t = async->data;
    cfanout *f = t->fanout;
    pthread_mutex_lock(&f->mutex);
    command cmd = t->cmd;
    long arg = t->arg;
    t->cmd = CMD_NONE;
    pthread_mutex_unlock(&f->mutex);
    switch (cmd) {
    case CMD_NONE: break;
    case CMD_LISTEN: receiver_listen(f); break;
    case CMD_CONNECT: sender_connect(f); break;
    case CMD_ARM: receiver_arm(f, arg); break;
    case CMD_SEND: sender_send(f, arg); break;
    case CMD_CLOSE: close_all(t); break;
    }
}

static void *thread_main(void *arg) {
    lthread *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    t->close_rc = uv_loop_close(&t->loop);
    return NULL;
}

static int start_thread(cfanout *f, lthread *t) {
    t->fanout = f;
    int rc = uv_loop_init(&t->loop);
    if (rc < 0) return rc;
    rc = uv_async_init(&t->loop, &t->wake, on_wake);
    if (rc < 0) {
        uv_loop_close(&t->loop);
        return rc;
    }
    t->wake.data = t;
    if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
        uv_close((uv_handle_t *)&t->wake, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        return UV_EAGAIN;
    }
    t->started = 1;
    return 0;
}

/* MARK: Public API */

cfanout *cfanout_create(int receivers, int frame_size) {
    if (receivers < 1 || receivers > MAX_RECEIVERS || frame_size < 0 || frame_size > BATCH - 4) {
        fprintf(stderr, "cfanout: invalid receivers %d or frame size %d\n", receivers, frame_size);
        return NULL;
    }
    cfanout *f = calloc(1, sizeof(cfanout));
    if (!f) return NULL;
    f->receivers = receivers;
    f->frame_size = frame_size;
    pthread_mutex_init(&f->mutex, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->sconns = calloc((size_t)receivers, sizeof(sconn));
    f->rconns = calloc((size_t)receivers, sizeof(rconn));
    f->payload = malloc((size_t)frame_size + 1);
    if (!f->sconns || !f->rconns || !f->payload) {
        cfanout_destroy(f);
        return NULL;
    }
    for (int i = 0; i < frame_size; i++) f->payload[i] = (char)(i * 31 + 7);
    int rc;
    if ((rc = start_thread(f, &f->sender)) < 0 || (rc = start_thread(f, &f->receiver)) < 0) {
        fprintf(stderr, "cfanout: starting a loop thread: %s\n", uv_strerror(rc));
        cfanout_destroy(f);
        return NULL;
    }
    int ok;
    send_command(&f->receiver, CMD_LISTEN, 0);
    WAIT_UNTIL(f, f->listening, ok);
    if (ok) {
        send_command(&f->sender, CMD_CONNECT, 0);
        WAIT_UNTIL(f, f->connected == receivers && f->accepted == receivers, ok);
    }
    if (!ok) {
        cfanout_destroy(f);
        return NULL;
    }
    return f;
}

double cfanout_run(cfanout *f, long frames_per_receiver) {
    int ok;
    pthread_mutex_lock(&f->mutex);
    f->armed = 0;
    f->all_done = 0;
    pthread_mutex_unlock(&f->mutex);
    send_command(&f->receiver, CMD_ARM, frames_per_receiver);
    WAIT_UNTIL(f, f->armed, ok);
    if (!ok) return -1;
    const double start = now_seconds();
    send_command(&f->sender, CMD_SEND, frames_per_receiver);
    WAIT_UNTIL(f, f->all_done, ok);
    const double end = now_seconds();
    return ok ? end - start : -1;
}

uint64_t cfanout_checksum(const cfanout *f) {
    /* Read after a run, when the receiver loop is idle: cfanout_run's lock hand-off orders it. */
    uint64_t sum = 0;
    for (int i = 0; i < f->naccepted; i++) sum += f->rconns[i].sum;
    return sum;
}

int cfanout_destroy(cfanout *f) {
    if (!f) return 0;
    lthread *threads[2] = {&f->sender, &f->receiver};
    for (int i = 0; i < 2; i++)
        if (threads[i]->started) send_command(threads[i], CMD_CLOSE, 0);
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        if (!threads[i]->started) continue;
        pthread_join(threads[i]->thread, NULL);
        if (rc == 0) rc = threads[i]->close_rc;
    }
    while (f->free_bufs) {
        wbuf *b = f->free_bufs;
        f->free_bufs = b->next;
        free(b);
    }
    if (f->rconns)
        for (int i = 0; i < f->receivers; i++) free(f->rconns[i].buf);
    free(f->sconns);
    free(f->rconns);
    free(f->payload);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mutex);
    free(f);
    return rc;
}

double cfanout_run_once(int receivers, int frame_size, long frames_per_receiver) {
    cfanout *f = cfanout_create(receivers, frame_size);
    if (!f) return -1;
    double seconds = cfanout_run(f, frames_per_receiver);
    if (cfanout_destroy(f) != 0) return -1;
    return seconds;
}
