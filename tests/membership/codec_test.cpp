#include "membership/codec.hpp"

#include <gtest/gtest.h>

namespace migware::membership {
namespace {

TEST(MembershipCodec, EveryKindRoundTripsAndTheSenderComesFromTheGroupLayer) {
    const std::vector<Message> all = {
        {.kind = MessageKind::Hello, .from = 9, .priority = 3, .epoch = 7, .active = 2, .active_left = false},
        {.kind = MessageKind::Hello, .from = 9, .priority = 0, .epoch = 1, .active_left = true},
        {.kind = MessageKind::Heartbeat, .from = 9, .primary_down = true, .sent_at = 123456789012},
        {.kind = MessageKind::Heartbeat, .from = 9, .primary_down = false, .sent_at = 1},
        {.kind = MessageKind::Heartbeat, .from = 9, .sent_at = -5},
        {.kind = MessageKind::Claim, .from = 9, .epoch = 0xfedcba9876543210ULL, .sent_at = 42, .ring = 0x123456789abcdefULL},
        {.kind = MessageKind::Release, .from = 9, .epoch = 4},
        {.kind = MessageKind::Facts, .from = 9, .facts = std::string("a\0b\nline", 8)},
    };
    for (const Message& m : all) {
        const auto d = decode(encode(m), 5);
        ASSERT_TRUE(d.message) << d.error;
        Message want = m;
        want.from = 5;  // never the payload's word
        EXPECT_EQ(*d.message, want) << name_of(m.kind);
    }
}

TEST(MembershipCodec, DamagedMessagesAreRefusedWithAReason) {
    const auto good = encode({.kind = MessageKind::Claim, .epoch = 1});
    auto refuse = [](std::vector<std::byte> b) { return decode(b, 1).error; };
    EXPECT_NE(refuse({}).find("short"), std::string::npos);
    auto bad = good;
    bad[0] = std::byte{'X'};
    EXPECT_EQ(refuse(bad), "bad magic");
    bad = good;
    bad[3] = std::byte{2};
    EXPECT_EQ(refuse(bad), "unknown version 2");
    bad = good;
    bad[4] = std::byte{99};
    EXPECT_EQ(refuse(bad), "unknown kind 99");
    bad = good;
    bad[5] = std::byte{0x80};
    EXPECT_EQ(refuse(bad), "unknown flags");
    bad = good;
    bad[5] = std::byte{8};
    EXPECT_EQ(refuse(bad), "inconsistent verdict flags");
    bad = good;
    bad.push_back(std::byte{0});
    EXPECT_EQ(refuse(bad), "facts length does not match the message");
    // Every truncation of a valid message is refused, never read past.
    const auto facts = encode({.kind = MessageKind::Facts, .facts = "0123456789"});
    for (std::size_t n = 0; n < facts.size(); ++n)
        EXPECT_FALSE(decode(std::span(facts.data(), n), 1).message) << n;
}

}  // namespace
}  // namespace migware::membership
