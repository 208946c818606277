#include "build-config.h"

#include "tb_proc.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tb_proc_entry {
    pid_t pid, ppid;
    char state; // 'Z' for a zombie: exited, not yet reaped
    double cpu_s;
    bool member;
};

/* tb_proc_read_stat reads the parent and CPU time of pid; false once gone. */
static bool
tb_proc_read_stat(pid_t pid, struct tb_proc_entry *e)
{
    char path[64], line[1024];
    unsigned long long utime, stime;
    int ppid;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    /* The command name may hold spaces and parentheses: skip past the last ')'. */
    char *p = ok ? strrchr(line, ')') : NULL;
    if (p == NULL
        || sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                  &e->state, &ppid, &utime, &stime)
               != 4) {
        return false;
    }
    e->pid = pid;
    e->ppid = ppid;
    e->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    e->member = false;
    return true;
}

/* tb_proc_read_memory adds pid's Rss and Pss, in kB, to u. */
static void
tb_proc_read_memory(pid_t pid, struct tb_usage *u)
{
    char path[64], line[256];
    unsigned long long kb;

    snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "Rss: %llu kB", &kb) == 1) {
            u->rss_kb += kb;
        } else if (sscanf(line, "Pss: %llu kB", &kb) == 1) {
            u->pss_kb += kb;
        }
    }
    fclose(f);
}

void
tb_proc_sample(const pid_t *roots, unsigned n, bool with_memory,
               struct tb_usage *u)
{
    struct tb_proc_entry *all = NULL;
    size_t len = 0, cap = 0;
    struct dirent *d;

    memset(u, 0, sizeof(*u));
    u->alive = true;
    for (unsigned i = 0; i < n; i++) {
        struct tb_proc_entry root;
        if (!tb_proc_read_stat(roots[i], &root) || root.state == 'Z') {
            u->alive = false;
        }
    }
    DIR *dir = opendir("/proc");
    if (dir == NULL) {
        return;
    }
    while ((d = readdir(dir)) != NULL) {
        if (!isdigit((unsigned char)d->d_name[0])) {
            continue;
        }
        if (len == cap) {
            cap = cap == 0 ? 256 : 2 * cap;
            struct tb_proc_entry *grown = realloc(all, cap * sizeof(*all));
            if (grown == NULL) {
                break;
            }
            all = grown;
        }
        if (tb_proc_read_stat((pid_t)atol(d->d_name), &all[len])) {
            len++;
        }
    }
    closedir(dir);
    for (size_t i = 0; i < len; i++) {
        for (unsigned r = 0; r < n; r++) {
            if (all[i].pid == roots[r]) {
                all[i].member = true;
            }
        }
    }
    /* Descendants, one generation per pass, until a pass adds none. */
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < len; i++) {
            for (size_t j = 0; j < len && !all[i].member; j++) {
                if (all[j].member && all[j].pid == all[i].ppid) {
                    all[i].member = grew = true;
                }
            }
        }
    }
    for (size_t i = 0; i < len; i++) {
        if (all[i].member) {
            u->procs++;
            u->cpu_s += all[i].cpu_s;
            if (with_memory) {
                tb_proc_read_memory(all[i].pid, u);
            }
        }
    }
    free(all);
}
