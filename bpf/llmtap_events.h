/* The event layout shared by the eBPF programs (tls_capture.c) and user space
 * (receiver/ebpf/events.py mirrors it with struct formats and checks the sizes
 * at load time).
 *
 * The kernel side does the minimum: copy bytes and ids into the ring buffer and
 * count what it had to drop. All parsing happens in user space.
 *
 * Every TLS data event carries `stream_offset`, the position of its first byte
 * in that connection direction's byte stream. The kernel advances the offset by
 * every byte SSL_read/SSL_write transferred, whether or not the bytes reached
 * the ring buffer, so user space sees any loss as a gap at an exact place.
 */
#ifndef LLMTAP_EVENTS_H
#define LLMTAP_EVENTS_H

/* Bytes of payload per event. One SSL call larger than this is split into
 * ordered segments (all with the same ts). A power of two, so the verifier can
 * bound a copy length with a mask. */
#define LLMTAP_SEGMENT_BYTES 16384
/* Segments one SSL call may produce: 1024 × 16 KiB = 16 MiB per call. Beyond
 * that the bytes are counted as lost (LLMTAP_DROP_TOO_LONG). */
#define LLMTAP_MAX_SEGMENTS 1024
#define LLMTAP_PATH_BYTES 256

enum llmtap_event_kind {
    LLMTAP_EV_TLS_DATA = 1,   /* plaintext bytes of one SSL_read/SSL_write call (or a segment of it) */
    LLMTAP_EV_TLS_FREE = 2,   /* SSL_free: the connection is gone; data = u64 final write offset, u64 final read offset */
    LLMTAP_EV_PROC_EXEC = 3,  /* a process called execve; data = struct llmtap_process (path, args) */
    LLMTAP_EV_PROC_EXIT = 4,  /* a whole process (thread group) exited; data = struct llmtap_process */
    LLMTAP_EV_PROC_FORK = 5,  /* a new process (not a thread); data = struct llmtap_process */
};

enum llmtap_direction {
    LLMTAP_DIR_WRITE = 0,  /* the traced process wrote (SSL_write*) */
    LLMTAP_DIR_READ = 1,   /* the traced process read (SSL_read*) */
};

/* Indexes of the per-CPU `drops` array. _EVENTS counts events, _BYTES payload bytes. */
enum llmtap_drop {
    LLMTAP_DROP_RING_FULL_EVENTS = 0,
    LLMTAP_DROP_RING_FULL_BYTES = 1,
    LLMTAP_DROP_READ_FAILED_EVENTS = 2,
    LLMTAP_DROP_READ_FAILED_BYTES = 3,
    LLMTAP_DROP_TOO_LONG_BYTES = 4,
    LLMTAP_IGNORED_BYTES = 5,   /* not a loss: bytes of connections user space ruled out */
    LLMTAP_DROP_PROC_RING_FULL_EVENTS = 6,  /* process events (exec, exit, fork) the ring buffer had no room for */
    LLMTAP_DROP_PROC_ARGS_READ_FAILED = 7,  /* exec events sent without their arguments (unreadable) */
    LLMTAP_DROP_COUNT = 8,
};

struct llmtap_event_header {
    u32 kind;           /* enum llmtap_event_kind */
    u32 pid;            /* thread group id (what user space calls a pid) */
    u32 tid;            /* thread id */
    u32 direction;      /* enum llmtap_direction, TLS_DATA only */
    u64 conn;           /* the SSL* pointer: with pid, the connection's identity */
    u64 ts_ns;          /* CLOCK_MONOTONIC at the call's return */
    u64 stream_offset;  /* TLS_DATA: offset of data[0] in this direction's stream */
    u32 call_bytes;     /* TLS_DATA: bytes the whole SSL call transferred */
    u32 data_bytes;     /* bytes in data[] */
    char comm[16];
};

struct llmtap_event {
    struct llmtap_event_header h;
    u8 data[LLMTAP_SEGMENT_BYTES];
};

/* Process events: this follows the header in data[]. Exec events carry the path
 * and then args_bytes bytes of the argument area (NUL-separated argv, as
 * /proc/<pid>/cmdline); exit and fork events end before `path`.
 *
 * A process is identified by (pid, start_ns): the thread group leader's start
 * time, CLOCK_BOOTTIME, which pid reuse cannot repeat. */
struct llmtap_process {
    u32 ppid;             /* the real parent's thread group id */
    u32 uid;              /* effective uid (objective credentials, as ps shows) */
    u64 start_ns;         /* this process's start (its fork), CLOCK_BOOTTIME */
    u64 parent_start_ns;  /* the parent's, likewise: (ppid, parent_start_ns) names the parent */
    u64 cgroup_id;        /* cgroup v2 id: the inode of its cgroup directory */
    u32 exit_code;        /* exit: task->exit_code = (status << 8) | signal, 0x80 = core dumped */
    u32 path_bytes;       /* exec: bytes of path[], the NUL included */
    u32 args_bytes;       /* exec: bytes of the argument area copied after path[] */
    u32 args_total;       /* exec: size of the whole argument area; more than args_bytes = truncated */
    char path[LLMTAP_PATH_BYTES];  /* exec: the file given to execve */
};

#endif
