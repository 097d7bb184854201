#include "rewrite/translation.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace migware::rewrite {
namespace {

using sniffer::SackBlock;
using sniffer::SeqDelta;
using sniffer::SeqNum;
using sniffer::TsVal;

constexpr std::uint32_t kWrap = 0xffffffffu;

TEST(EffectiveShift, OnlyWhenBothSentAndCappedAt14) {
    EXPECT_EQ(effective_shift(std::nullopt, std::nullopt), 0);
    EXPECT_EQ(effective_shift(std::uint8_t{7}, std::nullopt), 0);
    EXPECT_EQ(effective_shift(std::nullopt, std::uint8_t{7}), 0);
    EXPECT_EQ(effective_shift(std::uint8_t{7}, std::uint8_t{10}), 7);
    EXPECT_EQ(effective_shift(std::uint8_t{10}, std::uint8_t{0}), 10);
    EXPECT_EQ(effective_shift(std::uint8_t{14}, std::uint8_t{1}), 14);
    EXPECT_EQ(effective_shift(std::uint8_t{15}, std::uint8_t{1}), 14);  // RFC 7323 §2.3
    EXPECT_EQ(effective_shift(std::uint8_t{255}, std::uint8_t{1}), 14);
}

struct GeneralCase {
    std::string name;
    std::uint32_t syn_seq, a, isn_b, k;
    std::int32_t d1, d2;  // expected, as signed distances
};

class GeneralOffsets : public ::testing::TestWithParam<GeneralCase> {};

TEST_P(GeneralOffsets, MatchesDesignFormula) {
    const GeneralCase& c = GetParam();
    const SeqOffsets got =
        general_seq_offsets(SeqNum{c.syn_seq}, SeqNum{c.a}, SeqNum{c.isn_b}, SeqNum{c.k});
    EXPECT_EQ(got.d1.as_signed(), c.d1);
    EXPECT_EQ(got.d2.as_signed(), c.d2);
}

INSTANTIATE_TEST_SUITE_P(
    Table, GeneralOffsets,
    ::testing::Values(
        // SYN at A - 1: D1 is always 0, even where A - 1 wraps below zero.
        GeneralCase{"syn_at_a_minus_1", 999, 1000, 5000, 3000, 0, 2001},
        GeneralCase{"a_is_zero", kWrap, 0, 100, 100, 0, 1},
        GeneralCase{"d2_negative", 0, 1, 100, 1000, 0, -899},
        GeneralCase{"d2_across_wrap_negative", 0, 1, 0xfffffff0u, 0x10u, 0, -31},
        GeneralCase{"d2_across_wrap_positive", 0, 1, 0x10u, 0xfffffff0u, 0, 33},
        GeneralCase{"d1_positive", 1000, 900, 0, 0, 101, 1},
        GeneralCase{"d1_negative_across_wrap", 5, 0xfffffffau, 0, 0, 12, 1},
        GeneralCase{"d1_most_negative", 0x7fffffffu, 0, 0, 0, INT32_MIN, 1}),
    [](const auto& test_info) { return test_info.param.name; });

// Thesis §5.2 push-only: the client only pushes, so K = ISNp + 1 forever,
// and D2 = BMS - MCS must equal the general (ISNb + 1) - K.
struct PushOnlyCase {
    std::string name;
    std::uint32_t isn_p;  // MCS
    std::uint32_t isn_b;  // BMS
    std::uint32_t a;      // CMS
};

class ThesisPushOnly : public ::testing::TestWithParam<PushOnlyCase> {};

TEST_P(ThesisPushOnly, ThesisD2EqualsGeneralD2) {
    const PushOnlyCase& c = GetParam();
    const SeqNum k = SeqNum{c.isn_p} + 1u;
    const SeqNum syn_seq = SeqNum{c.a} - 1u;
    const SeqOffsets general = general_seq_offsets(syn_seq, SeqNum{c.a}, SeqNum{c.isn_b}, k);
    const SeqOffsets thesis =
        thesis_push_only_offsets(SeqNum{c.isn_p}, SeqNum{c.a}, syn_seq + 1u, SeqNum{c.isn_b});
    EXPECT_EQ(thesis.d2, general.d2);
    EXPECT_EQ(thesis.d2.value, c.isn_b - c.isn_p);
    // With MBS = the twin's first data byte (SYNseq + 1), D1 agrees too.
    EXPECT_EQ(thesis.d1, general.d1);
    EXPECT_EQ(general.d1.value, 0u);
}

TEST_P(ThesisPushOnly, LiteralMbsAsSynSeqIsOneShort) {
    // Documents the +1 pitfall: MBS read as the SYN's own sequence number.
    const PushOnlyCase& c = GetParam();
    const SeqNum syn_seq = SeqNum{c.a} - 1u;
    const SeqOffsets general =
        general_seq_offsets(syn_seq, SeqNum{c.a}, SeqNum{c.isn_b}, SeqNum{c.isn_p} + 1u);
    const SeqOffsets literal =
        thesis_push_only_offsets(SeqNum{c.isn_p}, SeqNum{c.a}, syn_seq, SeqNum{c.isn_b});
    EXPECT_EQ(literal.d1.as_signed(), general.d1.as_signed() - 1);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ThesisPushOnly,
    ::testing::Values(PushOnlyCase{"plain", 1000, 500000, 2000},
                      PushOnlyCase{"isn_p_at_top", kWrap, 7, 12345},
                      PushOnlyCase{"isn_b_at_top", 42, kWrap, 0},
                      PushOnlyCase{"k_wraps_to_zero", kWrap, kWrap - 5, 1},
                      PushOnlyCase{"half_space_apart", 0, 0x80000000u, 0x7fffffffu}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(Bidirectional, ServerSentDataSoThesisD2IsWrong) {
    // P sent 1000 bytes of responses that C acknowledged: K = ISNp + 1001.
    const SeqNum isn_p{0xfffffc00u};
    const SeqNum isn_b{0x00001234u};
    const SeqNum k = isn_p + 1001u;  // wraps past zero
    const SeqNum a{5000};
    const SeqNum syn_seq = a - 1u;
    const SeqOffsets general = general_seq_offsets(syn_seq, a, isn_b, k);
    const SeqOffsets thesis = thesis_push_only_offsets(isn_p, a, syn_seq + 1u, isn_b);
    EXPECT_NE(thesis.d2, general.d2);
    EXPECT_EQ(thesis.d2.as_signed() - general.d2.as_signed(), 1000);

    Offsets off;
    off.d1 = general.d1;
    off.d2 = general.d2;
    // The next server byte C expects is B's first data byte, both ways.
    EXPECT_EQ(client_to_backup_ack(k, off), isn_b + 1u);
    EXPECT_EQ(backup_to_client_seq(isn_b + 1u, off), k);
    // The first unacked client byte is the twin's first data byte.
    EXPECT_EQ(client_to_backup_seq(a, off), syn_seq + 1u);
    EXPECT_EQ(backup_to_client_ack(syn_seq + 1u, off), a);
}

ObservedConnection lab_connection() {
    // Linux defaults in the lab (DESIGN.md §4.3): MSS 1460, SACK, TS, wscale.
    ObservedConnection c;
    c.a = SeqNum{0x00000010u};
    c.k = SeqNum{0xfffffff0u};
    c.client_mss = 1460;
    c.client_wscale = 7;
    c.primary_wscale = 10;
    c.client_sack_permitted = c.primary_sack_permitted = true;
    c.client_timestamps = c.primary_timestamps = true;
    c.client_tsval_latest = TsVal{111};
    c.primary_tsval_last = TsVal{0xfffffff8u};
    return c;
}

TwinHandshake lab_twin(const ObservedConnection& c) {
    TwinHandshake t;
    t.syn_seq = twin_syn_seq(c);
    t.isn_b = SeqNum{0x00000020u};
    t.backup_wscale = 9;
    t.backup_sack_permitted = true;
    t.backup_timestamps = true;
    t.tsb0 = TsVal{0x00000100u};
    return t;
}

TEST(ComputeOffsets, LabConnection) {
    const ObservedConnection c = lab_connection();
    const TwinHandshake t = lab_twin(c);
    EXPECT_EQ(t.syn_seq.raw(), 0x0000000fu);
    const Offsets off = compute_offsets(c, t);
    EXPECT_EQ(off.d1.value, 0u);
    EXPECT_EQ(off.d2.value, 0x21u - 0xfffffff0u);  // (ISNb + 1) - K, mod 2^32
    EXPECT_EQ(off.d2.as_signed(), 0x31);
    EXPECT_EQ(off.dts.value, 0xfffffff9u - 0x100u);  // TSp_last + 1 - TSb0
    EXPECT_EQ(off.client_shift, 7);
    EXPECT_EQ(off.primary_shift, 10);
    EXPECT_EQ(off.backup_shift, 9);
    EXPECT_EQ(off.twin_client_shift, 7);
    EXPECT_TRUE(off.timestamps);
    EXPECT_TRUE(off.sack);
    // B's first TSval lands just above the last one C saw from P (PAWS).
    EXPECT_EQ(backup_to_client_tsval(t.tsb0, off), c.primary_tsval_last + 1u);
}

TEST(ComputeOffsets, OptionsOffOnEitherSideAreOff) {
    ObservedConnection c = lab_connection();
    TwinHandshake t = lab_twin(c);
    t.backup_wscale.reset();
    t.backup_timestamps = false;
    Offsets off = compute_offsets(c, t);
    EXPECT_EQ(off.backup_shift, 0);
    EXPECT_EQ(off.twin_client_shift, 0);
    EXPECT_EQ(off.client_shift, 7);  // C<->P still scales
    EXPECT_FALSE(off.timestamps);
    EXPECT_TRUE(off.sack);

    c = lab_connection();
    c.primary_wscale.reset();  // P refused scaling: C's offer must not reach B
    c.primary_sack_permitted = false;
    t = lab_twin(c);
    off = compute_offsets(c, t);
    EXPECT_EQ(off.client_shift, 0);
    EXPECT_EQ(off.primary_shift, 0);
    EXPECT_EQ(off.backup_shift, 0);
    EXPECT_EQ(off.twin_client_shift, 0);
    EXPECT_FALSE(off.sack);
}

// Scalar translation with wrap-around in every field and D's of both signs.
struct ScalarCase {
    std::string name;
    std::uint32_t d1, d2, dts;
    std::uint32_t value;
    // expected results for each function applied to `value`
    std::uint32_t c2b_seq, c2b_ack, c2b_tsecr, b2c_seq, b2c_ack, b2c_tsval;
};

class Scalars : public ::testing::TestWithParam<ScalarCase> {};

TEST_P(Scalars, EachFormula) {
    const ScalarCase& c = GetParam();
    Offsets off;
    off.d1 = SeqDelta{c.d1};
    off.d2 = SeqDelta{c.d2};
    off.dts = SeqDelta{c.dts};
    const SeqNum v{c.value};
    EXPECT_EQ(client_to_backup_seq(v, off).raw(), c.c2b_seq);
    EXPECT_EQ(client_to_backup_ack(v, off).raw(), c.c2b_ack);
    EXPECT_EQ(client_to_backup_tsecr(v, off).raw(), c.c2b_tsecr);
    EXPECT_EQ(backup_to_client_seq(v, off).raw(), c.b2c_seq);
    EXPECT_EQ(backup_to_client_ack(v, off).raw(), c.b2c_ack);
    EXPECT_EQ(backup_to_client_tsval(v, off).raw(), c.b2c_tsval);
}

INSTANTIATE_TEST_SUITE_P(
    Table, Scalars,
    ::testing::Values(
        ScalarCase{"zero_offsets", 0, 0, 0, 12345, 12345, 12345, 12345, 12345, 12345, 12345},
        ScalarCase{"small_positive", 1, 2, 3, 100, 101, 102, 97, 98, 99, 103},
        ScalarCase{"value_near_top_positive_d", 0x20, 0x30, 0x40, 0xfffffff0u,  //
                   0x10, 0x20, 0xffffffb0u, 0xffffffc0u, 0xffffffd0u, 0x30},
        ScalarCase{"value_near_zero_negative_d", 0xffffffe0u /*-32*/, 0xfffffff0u /*-16*/,
                   0xfffffffeu /*-2*/, 0x5,  //
                   0xffffffe5u, 0xfffffff5u, 0x7, 0x15, 0x25, 0x3},
        ScalarCase{"value_zero", 1, 1, 1, 0, 1, 1, kWrap, kWrap, kWrap, 1},
        ScalarCase{"value_max", 1, 1, 1, kWrap, 0, 0, 0xfffffffeu, 0xfffffffeu, 0xfffffffeu,
                   0},
        ScalarCase{"half_space_deltas", 0x80000000u, 0x80000000u, 0x80000000u, 0x1,
                   0x80000001u, 0x80000001u, 0x80000001u, 0x80000001u, 0x80000001u,
                   0x80000001u}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(Scalars, SackEdgesStraddlingWrap) {
    Offsets off;
    off.d1 = SeqDelta{0xffffff00u};  // -256
    off.d2 = SeqDelta{0x30u};
    const SackBlock from_client{SeqNum{0xfffffff0u}, SeqNum{0x10u}};
    const SackBlock to_backup = client_to_backup_sack(from_client, off);
    EXPECT_EQ(to_backup.left.raw(), 0x20u);
    EXPECT_EQ(to_backup.right.raw(), 0x40u);
    const SackBlock from_backup{SeqNum{0x80u}, SeqNum{0x180u}};
    const SackBlock to_client = backup_to_client_sack(from_backup, off);
    EXPECT_EQ(to_client.left.raw(), 0x180u);
    EXPECT_EQ(to_client.right.raw(), 0x280u);
    // The block keeps its length (RFC 2018 §3 edges are a half-open range).
    EXPECT_EQ((to_backup.right - to_backup.left).value, 0x20u);
}

TEST(RoundTrip, ClientToBackupToClientRecoversEveryNumber) {
    // A client number goes to B translated; B echoes it in the other role
    // (acks client seqs, sends server seqs the client SACKed, echoes TSvals);
    // translating the echo back must give the client's own number.
    const std::uint32_t values[] = {0, 1, 0x7fffffffu, 0x80000000u, 0xfffffffeu, kWrap, 0x1234};
    const std::uint32_t deltas[] = {0, 1, kWrap, 0x80000000u, 0x7fffffffu, 0xdeadbeefu};
    for (std::uint32_t d1 : deltas) {
        for (std::uint32_t d2 : deltas) {
            Offsets off;
            off.d1 = SeqDelta{d1};
            off.d2 = SeqDelta{d2};
            off.dts = SeqDelta{d1 ^ d2};
            for (std::uint32_t raw : values) {
                const SeqNum x{raw};
                EXPECT_EQ(backup_to_client_ack(client_to_backup_seq(x, off), off), x);
                EXPECT_EQ(backup_to_client_seq(client_to_backup_ack(x, off), off), x);
                EXPECT_EQ(client_to_backup_tsecr(backup_to_client_tsval(x, off), off), x);
                const SackBlock block{x, x + 1000u};
                const SackBlock at_b = client_to_backup_sack(block, off);
                EXPECT_EQ(backup_to_client_seq(at_b.left, off), block.left);
                EXPECT_EQ(backup_to_client_seq(at_b.right, off), block.right);
                const SackBlock at_c = backup_to_client_sack(block, off);
                EXPECT_EQ(client_to_backup_seq(at_c.left, off), block.left);
                EXPECT_EQ(client_to_backup_seq(at_c.right, off), block.right);
            }
        }
    }
}

struct WindowCase {
    std::uint16_t window;
    std::uint8_t from, to;
    std::uint16_t expected;
};

class Window : public ::testing::TestWithParam<WindowCase> {};

TEST_P(Window, Rescale) {
    const WindowCase& c = GetParam();
    EXPECT_EQ(rescale_window(c.window, c.from, c.to), c.expected)
        << c.window << " <<" << int{c.from} << " >>" << int{c.to};
}

INSTANTIATE_TEST_SUITE_P(
    Table, Window,
    ::testing::Values(WindowCase{1000, 0, 0, 1000}, WindowCase{1000, 7, 7, 1000},
                      WindowCase{1000, 7, 10, 125},      // 128000 bytes / 1024
                      WindowCase{1001, 7, 10, 125},      // rounds down
                      WindowCase{512, 10, 7, 4096},      // B scales more than P
                      WindowCase{65535, 14, 0, 65535},   // clamp
                      WindowCase{1024, 7, 0, 65535},     // 131072 clamps
                      WindowCase{511, 7, 0, 65408},      // just under the clamp
                      WindowCase{65535, 0, 14, 3},
                      WindowCase{1, 0, 14, 1},           // open stays open (floor 1)
                      WindowCase{3, 2, 14, 1},
                      WindowCase{65535, 14, 14, 65535},
                      WindowCase{1, 15, 0, 16384},       // shift above 14 acts as 14
                      WindowCase{16384, 0, 200, 1},      // RFC 7323 §2.3
                      WindowCase{0, 14, 0, 0}));

TEST(Window, AllShiftPairsAgainstArithmeticReference) {
    const std::uint16_t windows[] = {0, 1, 2, 3, 100, 255, 256, 1000, 4095, 32768, 65534, 65535};
    for (std::uint8_t from = 0; from <= 14; ++from) {
        for (std::uint8_t to = 0; to <= 14; ++to) {
            for (std::uint16_t w : windows) {
                // Reference in bytes with multiplication and division.
                const std::uint64_t bytes = std::uint64_t{w} * (std::uint64_t{1} << from);
                std::uint64_t want = bytes / (std::uint64_t{1} << to);
                if (want > 65535) want = 65535;
                if (want == 0 && w != 0) want = 1;  // an open window never reads as closed
                ASSERT_EQ(rescale_window(w, from, to), want)
                    << w << " " << int{from} << " " << int{to};
            }
        }
    }
}

TEST(Window, DirectionsUseTheRightShifts) {
    Offsets off;
    off.client_shift = 7;
    off.primary_shift = 10;
    off.backup_shift = 9;
    off.twin_client_shift = 7;
    EXPECT_EQ(client_to_backup_window(12345, off), 12345);  // passes unchanged
    EXPECT_EQ(backup_to_client_window(1000, off), 500);     // (1000 << 9) >> 10
    off.twin_client_shift = 0;  // B declined scaling: forward bytes, clamped
    EXPECT_EQ(client_to_backup_window(100, off), 12800);
    EXPECT_EQ(client_to_backup_window(1000, off), 65535);
}

}  // namespace
}  // namespace migware::rewrite
