/*
 * Scanning segment files record by record, for recovery and for the
 * compaction checks of recovery.  Main thread, inside start.
 */
#ifndef TORPOR_PLUGINS_FS_SCAN_H
#define TORPOR_PLUGINS_FS_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs.h"

enum {
    FS_SCAN_OK = 0,
    FS_SCAN_BAD = 1, /* not a whole valid record */
    FS_SCAN_IO = 2   /* reading failed; errno says why */
};

/* A window of one file, refilled as a scan moves forward. */
struct fs_reader {
    int fd;
    uint64_t size;
    uint8_t *buf;
    size_t cap;
    uint64_t base; /* file offset of buf[0] */
    size_t len;
};

/* One segment being scanned. */
struct fs_scan {
    struct fs_reader r;
    const char *path; /* for log lines */
    uint32_t no;
    uint8_t kind;  /* an fs_seg_kind */
    bool last;     /* the newest segment: a torn tail is cut off */
    bool apply;    /* apply records to the index, or only look */
    bool end_seen; /* the last record read was a snapshot end */
    struct fs_rec_snap_end end;
};

/* fs_reader_free frees the window; fd and size stay as they are. */
void fs_reader_free(struct fs_reader *r);
int fs_reader_record(struct fs_reader *r, uint64_t off, struct fs_rec_header *h,
                     const uint8_t **payload, const char **why);

/*
 * fs_scan_segment reads every record of s, applying them if s->apply.  A
 * torn tail of the last segment is cut off (s->r.size shrinks).  Returns
 * TORPOR_EIO, with an ERR line naming the file and offset, for a corrupt
 * record anywhere else; TORPOR_ENOMEM.
 */
torpor_err fs_scan_segment(struct fs_state *fs, struct fs_scan *s);

#endif /* TORPOR_PLUGINS_FS_SCAN_H */
