/* cpg_probe: print what a Corosync client sees, one line per event, with monotonic times.
 *
 * It joins a CPG group (CPG_MODEL_V1, with the initial totem confchg), tracks libquorum
 * (QUORUM_MODEL_V1: quorum and nodelist notifications, each with a ring id) and libvotequorum
 * (quorum and nodelist notifications), and polls the three fds in one loop.  For each poll
 * wake-up with more than one fd readable it prints a `wake` line first, so the arrival order
 * of events from different fds can be told apart from the dispatch order (always cpg, quorum,
 * votequorum here).  Used by the cluster lab (tests/lab/README.md) to check how the ring ids
 * and the two notification streams line up; not part of migware.
 *
 *   gcc -O2 -Wall -o cpg_probe cpg_probe.c -lcpg -lquorum -lvotequorum
 *   ip netns exec NS ./cpg_probe [-g GROUP] [-t SECS] [-m MS]
 *     -t SECS  exit after SECS seconds (default 60): every run is bounded
 *     -m MS    also cpg_mcast_joined a message every MS ms, and print each delivery
 *
 * Lines: T=<ms since start> <what> ...; ring ids print as nodeid.seq with seq in hex (the way
 * corosync-quorumtool and the corosync log print them) and in decimal.
 * Exit: 0 at the time limit, 2 when corosync goes away (a dispatch fails), 1 on a setup error.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <corosync/votequorum.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct timespec t_start;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t_start.tv_sec) * 1e3 + (t.tv_nsec - t_start.tv_nsec) / 1e6;
}

#define OUT(...) do { printf("T=%.3f ", now_ms()); printf(__VA_ARGS__); putchar('\n'); fflush(stdout); } while (0)

static void list_u32(char *buf, size_t n, const uint32_t *l, size_t k)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < k && off + 12 < n; i++)
        off += snprintf(buf + off, n - off, "%s%" PRIu32, i ? "," : "", l[i]);
}

static void cpg_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid,
                        void *msg, size_t len)
{
    (void)h; (void)g;
    OUT("cpg_deliver from=%" PRIu32 "/%" PRIu32 " len=%zu msg=%.*s", nodeid, pid, len,
        (int)(len > 40 ? 40 : len), (const char *)msg);
}

static void addrs(char *buf, size_t n, const struct cpg_address *l, size_t k)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < k && off + 24 < n; i++)
        off += snprintf(buf + off, n - off, "%s%" PRIu32 "/%" PRIu32, i ? "," : "", l[i].nodeid, l[i].pid);
}

static void cpg_confchg(cpg_handle_t h, const struct cpg_name *g,
                        const struct cpg_address *m, size_t mn,
                        const struct cpg_address *l, size_t ln,
                        const struct cpg_address *j, size_t jn)
{
    char a[512], b[512], c[512];
    (void)h; (void)g;
    addrs(a, sizeof a, m, mn); addrs(b, sizeof b, l, ln); addrs(c, sizeof c, j, jn);
    OUT("cpg_confchg members=%zu [%s] left=[%s] joined=[%s]", mn, a, b, c);
}

static void cpg_totem(cpg_handle_t h, struct cpg_ring_id r, uint32_t n, const uint32_t *m)
{
    char a[512];
    (void)h;
    list_u32(a, sizeof a, m, n);
    OUT("cpg_totem_confchg ring=%" PRIu32 ".%" PRIx64 " (seq %" PRIu64 ") members=%" PRIu32 " [%s]",
        r.nodeid, r.seq, r.seq, n, a);
}

static void q_quorum(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id r, uint32_t n, const uint32_t *m)
{
    char a[512];
    (void)h;
    list_u32(a, sizeof a, m, n);
    OUT("quorum_notify quorate=%" PRIu32 " ring=%" PRIu32 ".%" PRIx64 " (seq %" PRIu64 ") members=%" PRIu32 " [%s]",
        quorate, r.nodeid, r.seq, r.seq, n, a);
}

static void q_nodelist(quorum_handle_t h, struct quorum_ring_id r, uint32_t n, const uint32_t *m,
                       uint32_t jn, const uint32_t *j, uint32_t ln, const uint32_t *l)
{
    char a[512], b[512], c[512];
    (void)h;
    list_u32(a, sizeof a, m, n); list_u32(b, sizeof b, j, jn); list_u32(c, sizeof c, l, ln);
    OUT("quorum_nodelist ring=%" PRIu32 ".%" PRIx64 " (seq %" PRIu64 ") members=[%s] joined=[%s] left=[%s]",
        r.nodeid, r.seq, r.seq, a, b, c);
}

static void vq_quorum(votequorum_handle_t h, uint64_t ctx, uint32_t quorate, uint32_t n, votequorum_node_t nl[])
{
    char a[512];
    size_t off = 0;
    (void)h; (void)ctx;
    a[0] = 0;
    for (uint32_t i = 0; i < n && off + 24 < sizeof a; i++)
        off += snprintf(a + off, sizeof a - off, "%s%" PRIu32 ":%s", i ? "," : "", nl[i].nodeid,
                        nl[i].state == VOTEQUORUM_NODESTATE_MEMBER ? "member" :
                        nl[i].state == VOTEQUORUM_NODESTATE_DEAD ? "dead" : "leaving");
    OUT("votequorum_quorum quorate=%" PRIu32 " nodes=[%s]", quorate, a);
}

static void vq_nodelist(votequorum_handle_t h, uint64_t ctx, votequorum_ring_id_t r, uint32_t n, uint32_t nl[])
{
    char a[512];
    (void)h; (void)ctx;
    list_u32(a, sizeof a, nl, n);
    OUT("votequorum_nodelist ring=%" PRIu32 ".%" PRIx64 " (seq %" PRIu64 ") members=[%s]", r.nodeid, r.seq, r.seq, a);
}

static void vq_expected(votequorum_handle_t h, uint64_t ctx, uint32_t ev)
{
    (void)h; (void)ctx;
    OUT("votequorum_expected %" PRIu32, ev);
}

int main(int argc, char **argv)
{
    const char *group = "cpg_probe";
    double limit_s = 60, mcast_ms = 0;
    int o;
    while ((o = getopt(argc, argv, "g:t:m:")) != -1) {
        switch (o) {
        case 'g': group = optarg; break;
        case 't': limit_s = atof(optarg); break;
        case 'm': mcast_ms = atof(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-g GROUP] [-t SECS] [-m MS]\n", argv[0]);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    setvbuf(stdout, NULL, _IOLBF, 0);

    cpg_handle_t ch;
    cpg_model_v1_data_t cm = { .model = CPG_MODEL_V1, .cpg_deliver_fn = cpg_deliver,
                               .cpg_confchg_fn = cpg_confchg, .cpg_totem_confchg_fn = cpg_totem,
                               .flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF };
    cs_error_t e = cpg_model_initialize(&ch, CPG_MODEL_V1, (cpg_model_data_t *)&cm, NULL);
    if (e != CS_OK) { fprintf(stderr, "cpg_model_initialize: %d\n", e); return 1; }
    unsigned int local;
    if (cpg_local_get(ch, &local) == CS_OK) OUT("local nodeid=%u pid=%d", local, (int)getpid());
    struct cpg_name gn;
    gn.length = (uint32_t)strlen(group);
    if (gn.length >= CPG_MAX_NAME_LENGTH) { fprintf(stderr, "group name too long\n"); return 1; }
    memcpy(gn.value, group, gn.length);
    for (int k = 0; (e = cpg_join(ch, &gn)) == CS_ERR_TRY_AGAIN && k < 100; k++) usleep(10000);
    if (e != CS_OK) { fprintf(stderr, "cpg_join: %d\n", e); return 1; }

    quorum_handle_t qh;
    quorum_model_v1_data_t qm = { .model = QUORUM_MODEL_V1, .quorum_notify_fn = q_quorum,
                                  .nodelist_notify_fn = q_nodelist };
    uint32_t qtype;
    e = quorum_model_initialize(&qh, QUORUM_MODEL_V1, (quorum_model_data_t *)&qm, &qtype, NULL);
    if (e != CS_OK) { fprintf(stderr, "quorum_model_initialize: %d\n", e); return 1; }
    e = quorum_trackstart(qh, CS_TRACK_CURRENT | CS_TRACK_CHANGES);
    if (e != CS_OK) { fprintf(stderr, "quorum_trackstart: %d\n", e); return 1; }

    votequorum_handle_t vh;
    votequorum_callbacks_t vc = { .votequorum_quorum_notify_fn = vq_quorum,
                                  .votequorum_expectedvotes_notify_fn = vq_expected,
                                  .votequorum_nodelist_notify_fn = vq_nodelist };
    e = votequorum_initialize(&vh, &vc);
    if (e != CS_OK) { fprintf(stderr, "votequorum_initialize: %d\n", e); return 1; }
    e = votequorum_trackstart(vh, 0, CS_TRACK_CURRENT | CS_TRACK_CHANGES);
    if (e != CS_OK) { fprintf(stderr, "votequorum_trackstart: %d\n", e); return 1; }

    int fd[3];
    cpg_fd_get(ch, &fd[0]);
    quorum_fd_get(qh, &fd[1]);
    votequorum_fd_get(vh, &fd[2]);
    OUT("ready group=%s quorum_type=%u", group, qtype);

    const char *name[3] = { "cpg", "quorum", "votequorum" };
    double next_mcast = mcast_ms > 0 ? now_ms() + mcast_ms : 1e18;
    unsigned long seqno = 0;
    for (long iter = 0; iter < 100000000L; iter++) {
        double t = now_ms();
        if (t >= limit_s * 1e3) { OUT("time limit"); return 0; }
        if (t >= next_mcast) {
            char msg[64];
            int len = snprintf(msg, sizeof msg, "m%lu from pid %d", ++seqno, (int)getpid());
            struct iovec iov = { .iov_base = msg, .iov_len = (size_t)len };
            double t0 = now_ms();
            e = cpg_mcast_joined(ch, CPG_TYPE_AGREED, &iov, 1);
            double dt = now_ms() - t0;
            if (e != CS_OK || dt > 50) OUT("cpg_mcast_joined m%lu -> %d after %.1f ms", seqno, e, dt);
            next_mcast = now_ms() + mcast_ms;
        }
        double wait = limit_s * 1e3 - now_ms();
        if (next_mcast - now_ms() < wait) wait = next_mcast - now_ms();
        if (wait > 1000) wait = 1000;
        if (wait < 0) wait = 0;
        struct pollfd p[3];
        for (int i = 0; i < 3; i++) p[i] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
        int n = poll(p, 3, (int)wait);
        if (n < 0) { if (errno == EINTR) continue; perror("poll"); return 1; }
        if (n == 0) continue;
        int ready = 0;
        char set[64] = "";
        for (int i = 0; i < 3; i++)
            if (p[i].revents) {
                ready++;
                strcat(set, " "); strcat(set, name[i]);
                if (p[i].revents & (POLLHUP | POLLERR)) strcat(set, "(hup)");
            }
        if (ready > 1) OUT("wake%s", set);
        for (int i = 0; i < 3; i++) {
            if (!p[i].revents) continue;
            cs_error_t de = i == 0 ? cpg_dispatch(ch, CS_DISPATCH_ALL)
                          : i == 1 ? quorum_dispatch(qh, CS_DISPATCH_ALL)
                                   : votequorum_dispatch(vh, CS_DISPATCH_ALL);
            if (de != CS_OK && de != CS_ERR_TRY_AGAIN) {
                OUT("%s_dispatch error %d (corosync gone?)", name[i], de);
                return 2;
            }
        }
    }
    return 0;
}
