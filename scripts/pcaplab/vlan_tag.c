/* tc (clsact, cls_bpf direct-action) programs that emulate an 802.1Q VLAN sub-interface
 * on a veth for the pcap lab: this lab kernel has no CONFIG_VLAN_8021Q (no "ip link add
 * ... type vlan"), no act_vlan and no bridge vlan_filtering, but it has cls_bpf and the
 * bpf_skb_vlan_push/pop helpers, which live in the core and need none of those.
 *   egress:  tag every untagged outgoing frame with VLAN_ID (TPID 0x8100, PCP 0)
 *   ingress: untag frames carrying VLAN_ID, drop frames of other VLANs and untagged ones
 * Built by scripts/make_pcaps.sh with: clang -O2 -target bpf -c vlan_tag.c -o vlan_tag.o
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>

#ifndef VLAN_ID
#define VLAN_ID 42
#endif

static long (*bpf_skb_vlan_push)(struct __sk_buff *skb, __be16 proto, __u16 tci) =
    (void *)BPF_FUNC_skb_vlan_push;
static long (*bpf_skb_vlan_pop)(struct __sk_buff *skb) = (void *)BPF_FUNC_skb_vlan_pop;

__attribute__((section("egress"), used)) int vlan_egress(struct __sk_buff *skb)
{
    /* already tagged (a frame injected with its tag, e.g. by migware): pass it as it is */
    if (skb->vlan_present || skb->protocol == __builtin_bswap16(ETH_P_8021Q))
        return TC_ACT_OK;
    if (bpf_skb_vlan_push(skb, __builtin_bswap16(ETH_P_8021Q), VLAN_ID) != 0)
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}

__attribute__((section("ingress"), used)) int vlan_ingress(struct __sk_buff *skb)
{
    /* the core receive path has already moved the tag into skb metadata */
    if (!skb->vlan_present || (skb->vlan_tci & 0x0fff) != VLAN_ID)
        return TC_ACT_SHOT;
    if (bpf_skb_vlan_pop(skb) != 0)
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
