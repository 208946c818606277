/*
 * The file storage plugin's internal types, shared by its files.
 *
 * Layout on disk: a data directory holds a LOCK file and numbered segment
 * files ("0000002a.seg").  A segment is a sequence of records (see
 * fs_record.c); commits append to the newest, the active segment.
 *
 * Threads: the configure, start, stop and destroy hooks run on the main
 * thread.  The storage ops run on any loop and only queue a request under
 * fs_state.mu.  One worker thread (fs_worker.c) owns everything else: the
 * segment files, the index, compaction.  Results go back to the caller's
 * loop with host->loop_post, in queue order.
 *
 * Memory: a request owns the copies of its inputs and, once executed, its
 * results; the completion task frees all of it on the caller's loop, so the
 * worker never frees what a loop may still read.
 */
#ifndef TORPOR_PLUGINS_FS_H
#define TORPOR_PLUGINS_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/torpor.h>

#define FS_PLUGIN_NAME "file"

#define FS_LOG(fs, level, ...)                                                 \
    (fs)->host->log((fs)->self, (level), NULL, NULL, __VA_ARGS__)

/* ---- records (fs_record.c) ---- */

/* Every record starts with this header; all integers are little-endian. */
#define FS_REC_MAGIC 0x31524654u /* "TFR1" as bytes */
#define FS_REC_VERSION 1
#define FS_REC_HEADER_BYTES 16

/*
 * Largest payload of one record.  It bounds what recovery believes of a
 * length field, and keeps value offsets within a segment in 32 bits.
 */
#define FS_REC_MAX_BYTES (UINT32_C(1) << 30)

enum fs_rec_type {
    FS_REC_SEGMENT = 1,     /* first record of every segment file */
    FS_REC_COMMIT = 2,      /* one object's atomic batch of writes */
    FS_REC_DROP = 3,        /* one object's every key and alarm removed */
    FS_REC_SNAPSHOT = 4,    /* part of one object's state, by compaction */
    FS_REC_SNAPSHOT_END = 5 /* the last record of a complete snapshot */
};

enum fs_seg_kind {
    FS_SEG_LOG = 1,     /* commits and drops, in queue order */
    FS_SEG_SNAPSHOT = 2 /* the live state as a compaction wrote it */
};

/* A growable byte buffer; an allocation failure sticks in oom. */
struct fs_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    bool oom;
};

/* A decoded record header. */
struct fs_rec_header {
    uint32_t magic;
    uint8_t version;
    uint8_t type;
    uint32_t len; /* payload bytes */
    uint32_t crc;
};

/* The first record of a segment. */
struct fs_rec_segment {
    uint32_t no;   /* must equal the number in the file's name */
    uint8_t kind;  /* an fs_seg_kind */
    uint32_t base; /* snapshot: the first segment of its snapshot */
};

/* A snapshot end: the snapshot spans segments base..last, contiguous. */
struct fs_rec_snap_end {
    uint32_t base;
    uint32_t last;
    uint64_t objects;
};

/* The object at the head of a commit or snapshot payload. */
struct fs_obj_view {
    const uint8_t *id;
    const uint8_t *class_name;
    uint32_t class_len;
    const uint8_t *name;
    uint32_t name_len;
};

/* One write of a commit or snapshot payload, as the cursor yields it. */
struct fs_write_view {
    uint8_t kind; /* a torpor_write_kind */
    const uint8_t *key;
    uint32_t klen;
    const uint8_t *value;
    uint32_t vlen;
    size_t value_off; /* of the value within the payload */
    uint64_t time_ms;
};

/* Walks the writes of a payload that fs_rec_object opened. */
struct fs_rec_cursor {
    const uint8_t *p;
    size_t len;
    size_t off;
    uint32_t left;
};

/*
 * fs_buf_* append to a buffer, growing it; after a failed allocation they
 * do nothing more and b->oom stays set, so callers check once at the end.
 * fs_buf_reserve also says whether more bytes fit.
 */
void fs_buf_free(struct fs_buf *b);
bool fs_buf_reserve(struct fs_buf *b, size_t more);
void fs_buf_bytes(struct fs_buf *b, const void *data, size_t len);
void fs_buf_u8(struct fs_buf *b, uint8_t v);
void fs_buf_u32(struct fs_buf *b, uint32_t v);
void fs_buf_u64(struct fs_buf *b, uint64_t v);

/* Little-endian integers, whatever the host's byte order. */
uint32_t fs_get_u32(const uint8_t *p);
uint64_t fs_get_u64(const uint8_t *p);
void fs_put_u32(uint8_t *p, uint32_t v);

/*
 * fs_rec_begin reserves a header in b and returns where the record starts;
 * fs_rec_finish fills the header (type, length, checksum) once the payload
 * after it is complete.
 */
size_t fs_rec_begin(struct fs_buf *b);
void fs_rec_finish(struct fs_buf *b, size_t start, uint8_t type);

/* fs_rec_checksum: CRC-32 of the header's first 12 bytes, then the payload. */
uint32_t fs_rec_checksum(const uint8_t *header, const uint8_t *payload,
                         size_t len);

/*
 * fs_rec_parse_header decodes 16 bytes; false (with a reason for logs) when
 * the magic, version, type or length cannot be a record's.
 */
bool fs_rec_parse_header(const uint8_t *p, struct fs_rec_header *h,
                         const char **why);
/* fs_rec_verify: whether h's checksum matches; payload has h->len bytes. */
bool fs_rec_verify(const struct fs_rec_header *h, const uint8_t *header,
                   const uint8_t *payload);

/* Encoders append one whole record to b. */
void fs_rec_put_segment(struct fs_buf *b, const struct fs_rec_segment *s);
void fs_rec_put_snap_end(struct fs_buf *b, const struct fs_rec_snap_end *e);
void fs_rec_put_drop(struct fs_buf *b, const uint8_t id[16]);
/*
 * fs_rec_put_object appends an object header and a write count of 0 to a
 * payload; it returns the count's offset in b, for fs_put_u32 to patch.
 */
size_t fs_rec_put_object(struct fs_buf *b, const uint8_t id[16],
                         const void *class_name, uint32_t class_len,
                         const void *name, uint32_t name_len);

/*
 * fs_rec_commit_bytes is the encoded size of a commit record, or 0 when it
 * would exceed FS_REC_MAX_BYTES or holds an unknown write kind (*bad_kind).
 */
size_t fs_rec_commit_bytes(const torpor_storage_object *object,
                           const torpor_write *writes, size_t n,
                           bool *bad_kind);
void fs_rec_put_commit(struct fs_buf *b, const torpor_storage_object *object,
                       const torpor_write *writes, size_t n);

/* Decoders of payloads; false when the payload is malformed. */
bool fs_rec_segment_decode(const uint8_t *p, size_t len,
                           struct fs_rec_segment *s);
bool fs_rec_snap_end_decode(const uint8_t *p, size_t len,
                            struct fs_rec_snap_end *e);
bool fs_rec_object(const uint8_t *p, size_t len, struct fs_obj_view *o,
                   struct fs_rec_cursor *c);
/* fs_rec_next_write: 1 a write, 0 the end, -1 malformed. */
int fs_rec_next_write(struct fs_rec_cursor *c, struct fs_write_view *w);

/* Bytes one write or one object header takes in a payload. */
size_t fs_rec_write_bytes(uint8_t kind, size_t klen, size_t vlen);
size_t fs_rec_object_bytes(size_t class_len, size_t name_len);

/* ---- configuration (fs_config.c) ---- */

enum fs_sync { FS_SYNC_ALWAYS = 1, FS_SYNC_INTERVAL = 2, FS_SYNC_NEVER = 3 };

/* The [storage.file] section; see fs_config.c for each key. */
struct fs_config {
    char *dir;
    int sync; /* an fs_sync */
    uint64_t sync_interval_ms;
    uint64_t segment_bytes;
    double compact_ratio;
    uint64_t compact_min_bytes;
};

/*
 * fs_config_defaults fills cfg (TORPOR_ENOMEM); fs_config_set takes one
 * key as the configure hook does: TORPOR_ENOKEY, or TORPOR_EINVAL with a
 * reason in why.  Main thread.
 */
torpor_err fs_config_defaults(struct fs_config *cfg);
void fs_config_free(struct fs_config *cfg);
torpor_err fs_config_set(struct fs_config *cfg, const char *key,
                         const char *value, char *why, size_t why_size);

/* ---- the index (fs_index.c, fs_alarm.c) ---- */

/*
 * One live key.  The value stays on disk: seg and off say where, so a key
 * costs this struct, its bytes and a pointer in its object's array.
 */
struct fs_key {
    uint32_t seg;
    uint32_t off;
    uint32_t vlen;
    uint32_t klen;
    uint8_t key[];
};

/* One alarm; heap_pos is its slot in fs_index.heap. */
struct fs_alarm {
    struct fs_obj *obj;
    uint64_t time_ms;
    uint32_t heap_pos;
    uint32_t nlen;
    uint8_t name[];
};

/*
 * One object with at least one key or alarm; an object that has neither is
 * removed.  meta holds the class name, a NUL, then the object's name.
 */
struct fs_obj {
    uint8_t id[16];
    struct fs_obj *next;      /* hash chain */
    struct fs_key **keys;     /* bytewise order */
    struct fs_alarm **alarms; /* by name */
    uint32_t nkeys;
    uint32_t cap_keys;
    uint32_t nalarms;
    uint32_t cap_alarms;
    uint32_t class_len;
    uint32_t name_len;
    uint8_t meta[];
};

struct fs_index {
    struct fs_obj **buckets;
    size_t nbuckets; /* a power of two */
    size_t nobjs;
    uint64_t nkeys;

    /* Objects by id, rebuilt only when objects came or went. */
    struct fs_obj **order;
    bool order_valid;

    /* Every alarm, a min-heap on time_ms. */
    struct fs_alarm **heap;
    size_t nheap;
    size_t cap_heap;

    /* What a compaction snapshot of the whole index would take. */
    uint64_t live_bytes;
};

/*
 * fs_index_init makes an empty index (TORPOR_ENOMEM); fs_index_free frees
 * it whole; fs_index_find returns the object with id, or NULL.
 */
torpor_err fs_index_init(struct fs_index *ix);
void fs_index_free(struct fs_index *ix);
struct fs_obj *fs_index_find(const struct fs_index *ix, const uint8_t *id);

/*
 * fs_index_apply applies a commit or snapshot payload whose bytes lie at
 * payload_off of segment seg.  TORPOR_EIO: malformed; TORPOR_ENOMEM: the
 * index may hold part of the record.  Worker thread.
 */
torpor_err fs_index_apply(struct fs_index *ix, const uint8_t *payload,
                          size_t len, uint32_t seg, uint64_t payload_off);
/* fs_index_drop removes the object with id and all it holds, if any. */
void fs_index_drop(struct fs_index *ix, const uint8_t *id);

/* fs_index_sorted: every object by id, n of them; NULL on ENOMEM. */
struct fs_obj **fs_index_sorted(struct fs_index *ix, size_t *n);

/* fs_obj_lower_bound: the first key of obj not below key. */
uint32_t fs_obj_lower_bound(const struct fs_obj *obj, const void *key,
                            size_t klen);
/* fs_key_cmp orders bytewise, a prefix before its extensions. */
int fs_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/*
 * fs_alarm_find: where name is or would go in obj's alarms.  fs_alarm_set
 * adds or moves one (TORPOR_ENOMEM), fs_alarm_delete removes one if there,
 * fs_alarm_free_all removes all of obj's.  All keep live_bytes and the
 * heap in step.
 */
size_t fs_alarm_find(const struct fs_obj *obj, const void *name, size_t nlen,
                     bool *found);
torpor_err fs_alarm_set(struct fs_index *ix, struct fs_obj *obj,
                        const void *name, size_t nlen, uint64_t time_ms);
void fs_alarm_delete(struct fs_index *ix, struct fs_obj *obj, const void *name,
                     size_t nlen);
void fs_alarm_free_all(struct fs_index *ix, struct fs_obj *obj);

/*
 * fs_alarm_due fills out with up to limit alarms due at or before
 * before_ms, earliest first, without changing the heap.  Returns the count,
 * or SIZE_MAX on ENOMEM.
 */
size_t fs_alarm_due(const struct fs_index *ix, uint64_t before_ms,
                    uint32_t limit, struct fs_alarm **out);

/* ---- requests and the worker (fs_plugin.c, fs_worker.c, fs_read.c) ---- */

enum fs_op {
    FS_OP_GET = 1,
    FS_OP_LIST,
    FS_OP_COMMIT,
    FS_OP_ALARMS,
    FS_OP_DUE,
    FS_OP_OBJECTS,
    FS_OP_DROP
};

/*
 * One queued operation.  Allocated by the op on the caller's loop, run by
 * the worker, freed by its completion task on the caller's loop.
 */
struct fs_req {
    torpor_task task;    /* posted once the result is ready */
    struct fs_req *next; /* queue link, under fs_state.mu */
    torpor_loop *loop;
    uint8_t op; /* an fs_op */
    torpor_err err;
    union {
        torpor_storage_done_cb done;
        torpor_storage_rows_cb rows;
        torpor_storage_alarms_cb alarms;
        torpor_storage_objects_cb objects;
    } cb;
    void *arg;
    uint8_t id[16];

    /* Inputs: copies that point into the bytes allocated after req. */
    torpor_bytes *keys; /* get */
    size_t nkeys;
    torpor_range range; /* list */
    uint64_t before_ms; /* alarms_due */
    uint32_t limit;     /* alarms_due, objects */
    bool has_after;     /* objects */
    uint8_t after[16];

    /* commit and drop: the whole encoded record, written as it is. */
    struct fs_buf rec;
    uint64_t rec_off; /* where the worker wrote it */

    /* Results: one allocation, an array followed by the bytes it uses. */
    void *out;
    size_t nout;
};

/* A segment file, open for the store's lifetime. */
struct fs_seg {
    uint32_t no;
    uint32_t base; /* snapshot: the first segment of its snapshot */
    uint8_t kind;  /* an fs_seg_kind */
    int fd;
    uint64_t size;
};

struct fs_state {
    const struct torpor_host *host;
    torpor_plugin_ctx *self;
    struct fs_config cfg;

    /* Main thread. */
    bool started;
    int lock_fd;

    /* Worker thread once started; start and destroy before and after. */
    int dir_fd;
    struct fs_seg *segs; /* by number; the last is the active one */
    size_t nsegs;
    size_t cap_segs;
    uint32_t next_seg;
    uint64_t disk_bytes;
    struct fs_index ix;
    bool dirty;         /* written since the last fsync */
    uint64_t synced_ms; /* host->now_ms of the last fsync */
    bool failed;        /* a sync, a cut or an index update failed: all EIO */
    uint64_t compact_hold_bytes; /* no compaction below, after a failure */

    /* Batch state of the worker: commits written but not yet applied. */
    struct fs_req **pending;
    size_t npending;
    size_t cap_pending;
    uint64_t pending_bytes;

    /* The queue, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fs_req *head;
    struct fs_req *tail;
    bool running;    /* the worker takes requests */
    bool closing;    /* no new ops; the worker drains and exits */
    bool sync_asked; /* stop asked for an fsync */
    pthread_t thread;
    bool thread_started; /* main thread only */
};

/*
 * fs_worker_start starts the worker once recovery is done (TORPOR_ENOMEM);
 * fs_worker_stop refuses new requests, lets the worker run what is queued
 * and sync, and joins it.  Main thread.
 */
torpor_err fs_worker_start(struct fs_state *fs);
void fs_worker_stop(struct fs_state *fs);

/*
 * fs_queue hands req to the worker, which owns it from then on.  Any
 * thread.  TORPOR_ESTATE before start, TORPOR_ECLOSED once closing; the
 * caller keeps req then.
 */
torpor_err fs_queue(struct fs_state *fs, struct fs_req *req);
void fs_req_free(struct fs_req *req);

/*
 * fs_sync_active fsyncs the active segment if it was written to.  On
 * failure the store fails every later request: TORPOR_EIO.  Worker.
 */
torpor_err fs_sync_active(struct fs_state *fs);

/*
 * fs_read_exec runs one read request against the index, leaving its result
 * or error in req.  fs_read_value preads k's value into dst (k->vlen
 * bytes): TORPOR_EIO, logged.  Worker.
 */
void fs_read_exec(struct fs_state *fs, struct fs_req *req);
torpor_err fs_read_value(struct fs_state *fs, const struct fs_key *k,
                         uint8_t *dst);

/* ---- files (fs_dir.c, fs_recover.c, fs_compact.c) ---- */

/*
 * fs_dir_open creates and locks the data directory: TORPOR_EBUSY when
 * another holder has it, TORPOR_EIO; both logged.  fs_dir_close closes
 * every segment and releases the lock.  fs_dir_sync fsyncs the directory
 * itself, so that created, renamed and deleted names are durable.
 */
torpor_err fs_dir_open(struct fs_state *fs);
void fs_dir_close(struct fs_state *fs);
torpor_err fs_dir_sync(struct fs_state *fs);

/*
 * fs_seg_name formats "NNNNNNNN.EXT".  fs_seg_find looks a segment up by
 * number; fs_seg_add appends one to the table (TORPOR_ENOMEM), which
 * stays sorted because numbers only grow.
 */
void fs_seg_name(char *buf, size_t size, uint32_t no, const char *ext);
struct fs_seg *fs_seg_find(struct fs_state *fs, uint32_t no);
torpor_err fs_seg_add(struct fs_state *fs, uint32_t no, uint8_t kind, int fd,
                      uint64_t size);

/*
 * fs_seg_open_tmp takes the next segment number and creates its .tmp file;
 * fs_seg_publish fsyncs it and renames it to .seg.  The caller fsyncs the
 * directory.
 */
torpor_err fs_seg_open_tmp(struct fs_state *fs, uint32_t *no, int *fd);
torpor_err fs_seg_publish(struct fs_state *fs, uint32_t no, int fd);

/*
 * fs_seg_create makes an empty log segment with its header, under a
 * temporary name that is renamed once the header is durable, so a segment
 * file never lacks its header.  It becomes the active segment.
 */
torpor_err fs_seg_create(struct fs_state *fs);

/* fs_write_all and fs_read_all loop over short transfers; errno is kept. */
bool fs_write_all(int fd, const void *data, size_t len, uint64_t off);
bool fs_read_all(int fd, void *data, size_t len, uint64_t off);

/* fs_path: "DIR/NAME" for log lines. */
const char *fs_path(const struct fs_state *fs, const char *name, char *buf,
                    size_t size);

/*
 * fs_recover rebuilds the index from the segments and leaves a log segment
 * to append to.  Main thread, in start.  TORPOR_EIO (logged with the file
 * and offset) when acknowledged data is damaged, TORPOR_ENOMEM.
 */
torpor_err fs_recover(struct fs_state *fs);

/*
 * fs_compact_due: whether the on-disk bytes call for a compaction.
 * fs_compact rewrites the live state and drops the old segments; on
 * failure (logged) the old segments stay in use.  Worker, or start.
 */
bool fs_compact_due(const struct fs_state *fs);
torpor_err fs_compact(struct fs_state *fs);

#endif /* TORPOR_PLUGINS_FS_H */
