/* tc (clsact egress, cls_bpf direct-action) program for replay_http.sh --capture-loss: on
 * the hub's port toward the backup, drop one in EVERY of the TCP frames whose IPv4 source
 * is SRC_IP (the primary), at random, so that migware's capture misses some of the primary's
 * segments while the client, on its own port, gets them all.  This lab kernel has neither
 * netem nor act_gact, but it has cls_bpf.
 * Built by tests/lab/replay_http.sh with:
 *   clang -O2 -target bpf -DSRC_IP=0x...(host order) -DEVERY=N -c capture_loss.c
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>

#ifndef SRC_IP
#define SRC_IP 0xc6120001u /* 198.18.0.1 */
#endif
#ifndef EVERY
#define EVERY 20
#endif

static long (*bpf_skb_load_bytes)(const struct __sk_buff *skb, __u32 offset, void *to, __u32 len) =
    (void *)BPF_FUNC_skb_load_bytes;
static __u32 (*bpf_get_prandom_u32)(void) = (void *)BPF_FUNC_get_prandom_u32;

__attribute__((section("egress"), used)) int capture_loss(struct __sk_buff *skb)
{
    if (skb->protocol != __builtin_bswap16(ETH_P_IP))
        return TC_ACT_OK;
    __u8 proto;
    __u32 src;
    if (bpf_skb_load_bytes(skb, ETH_HLEN + 9, &proto, 1) != 0 ||
        bpf_skb_load_bytes(skb, ETH_HLEN + 12, &src, 4) != 0)
        return TC_ACT_OK;
    if (proto != 6 || src != __builtin_bswap32(SRC_IP))
        return TC_ACT_OK;
    return bpf_get_prandom_u32() % EVERY == 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
