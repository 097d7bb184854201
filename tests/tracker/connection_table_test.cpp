#include "tracker/connection_table.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <span>
#include <string_view>
#include <string>
#include <vector>

namespace migware::tracker {
namespace {

using sniffer::Endpoint;
using sniffer::Ipv4Addr;
using sniffer::Packet;
using sniffer::PacketKind;
using sniffer::Port;
using sniffer::SeqNum;
namespace tf = sniffer::tcp_flag;

const Endpoint kClient{Ipv4Addr{0xc612000a}, Port{40000}};  // 198.18.0.10
const Endpoint kServer{Ipv4Addr{0xc6120001}, Port{7000}};   // 198.18.0.1
const Endpoint kOther{Ipv4Addr{0xc6120002}, Port{7000}};    // 198.18.0.2

// A segment built as a parsed Packet plus the frame bytes its payload sits in
// (the tracker copies payload from the frame at layout.payload).
struct Segment {
    Packet packet;
    std::vector<std::byte> frame;
};

struct SegmentSpec {
    Endpoint src = kClient;
    Endpoint dst = kServer;
    std::uint8_t flags = tf::kAck;
    std::uint32_t seq = 0;
    std::uint32_t ack = 0;
    std::string payload;
    std::optional<std::uint16_t> mss;
    std::optional<std::uint8_t> wscale;
    bool sack_ok = false;
    std::optional<std::uint32_t> tsval;
    std::uint32_t tsecr = 0;
    std::uint16_t window = 512;
};

Segment seg(const SegmentSpec& s) {
    Segment out;
    Packet& p = out.packet;
    p.kind = PacketKind::Tcp;
    p.has_ethernet = true;
    p.eth.src.bytes = {2, 0, 0, 0, 0, static_cast<std::uint8_t>(s.src.ip.value & 0xff)};
    p.eth.dst.bytes = {2, 0, 0, 0, 0, static_cast<std::uint8_t>(s.dst.ip.value & 0xff)};
    p.ip.src = s.src.ip;
    p.ip.dst = s.dst.ip;
    p.ip.protocol = 6;
    p.tcp.src_port = s.src.port;
    p.tcp.dst_port = s.dst.port;
    p.tcp.seq = SeqNum{s.seq};
    p.tcp.ack = SeqNum{s.ack};
    p.tcp.flags = s.flags;
    p.tcp.window = s.window;
    p.tcp.options.mss = s.mss;
    p.tcp.options.wscale = s.wscale;
    p.tcp.options.sack_permitted = s.sack_ok;
    if (s.tsval) {
        p.tcp.options.has_timestamps = true;
        p.tcp.options.tsval = *s.tsval;
        p.tcp.options.tsecr = s.tsecr;
    }
    p.layout = {14, 34, 54};
    out.frame.assign(54, std::byte{0});
    for (char ch : s.payload) out.frame.push_back(static_cast<std::byte>(ch));
    p.payload_length = static_cast<std::uint32_t>(s.payload.size());
    p.payload_captured = p.payload_length;
    return out;
}

Observation feed(ConnectionTable& t, const SegmentSpec& s, std::int64_t now = 1) {
    Segment g = seg(s);
    return t.observe(g.packet, g.frame, now);
}

std::string held(const Connection& c) {
    std::string out(c.unacked.size(), '\0');
    std::vector<std::byte> bytes(c.unacked.size());
    EXPECT_TRUE(c.unacked.copy_out(0, bytes));
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
}

// Full handshake with Linux-like options; returns the table.
void handshake(ConnectionTable& t, std::uint32_t cisn, std::uint32_t sisn,
               const Endpoint& client = kClient, std::uint32_t cts = 1000,
               std::uint32_t sts = 5000) {
    feed(t, {.src = client, .dst = kServer, .flags = tf::kSyn, .seq = cisn, .mss = 1460,
             .wscale = 7, .sack_ok = true, .tsval = cts});
    feed(t, {.src = kServer, .dst = client, .flags = tf::kSyn | tf::kAck, .seq = sisn,
             .ack = cisn + 1, .mss = 1400, .wscale = 10, .sack_ok = true, .tsval = sts,
             .tsecr = cts});
    feed(t, {.src = client, .dst = kServer, .seq = cisn + 1, .ack = sisn + 1, .tsval = cts + 1,
             .tsecr = sts});
}

TEST(ConnectionTable, HandshakeRecordsIsnsAndNegotiatedOptions) {
    ConnectionTable t({});
    feed(t, {.flags = tf::kSyn, .seq = 100, .mss = 1460, .wscale = 7, .sack_ok = true,
             .tsval = 1000});
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->state, TcpState::Handshake);
    EXPECT_FALSE(c->partial);
    EXPECT_FALSE(c->handshake_seen());
    feed(t, {.src = kServer, .dst = kClient, .flags = tf::kSyn | tf::kAck, .seq = 9000, .ack = 101,
             .mss = 1400, .wscale = 10, .sack_ok = true, .tsval = 5000, .tsecr = 1000});
    EXPECT_EQ(c->state, TcpState::Handshake);
    feed(t, {.seq = 101, .ack = 9001, .tsval = 1001, .tsecr = 5000});
    EXPECT_EQ(c->state, TcpState::Established);
    EXPECT_EQ(c->client_isn, SeqNum{100});
    EXPECT_EQ(c->server_isn, SeqNum{9000});
    EXPECT_EQ(c->client_mss, 1400 + 60);
    EXPECT_TRUE(c->wscale_in_use());
    EXPECT_EQ(c->client_wscale(), 7);
    EXPECT_EQ(c->server_wscale(), 10);
    EXPECT_TRUE(c->sack_in_use());
    EXPECT_TRUE(c->timestamps_in_use());
    EXPECT_EQ(c->server_ack_high, SeqNum{101});
    EXPECT_EQ(c->client_ack_high, SeqNum{9001});
    EXPECT_EQ(c->client_bytes_acked(), 0u);
    EXPECT_EQ(c->server_bytes_acked(), 0u);
    EXPECT_EQ(c->client_mac.bytes[5], 0x0a);
    EXPECT_EQ(c->server_mac.bytes[5], 0x01);
    EXPECT_EQ(t.counters().created, 1u);
    EXPECT_EQ(t.counters().created_partial, 0u);
}

TEST(ConnectionTable, OptionInUseOnlyWhenBothSidesOfferedIt) {
    struct Case {
        const char* name;
        bool c_sack, s_sack;
        bool c_ts, s_ts;
        std::optional<std::uint8_t> c_ws, s_ws;
        bool sack, ts, ws;
    };
    const Case cases[] = {
        {"all both", true, true, true, true, 7, 10, true, true, true},
        {"client only", true, false, true, false, 7, std::nullopt, false, false, false},
        {"server only", false, true, false, true, std::nullopt, 3, false, false, false},
        {"none", false, false, false, false, std::nullopt, std::nullopt, false, false, false},
    };
    for (const Case& k : cases) {
        ConnectionTable t({});
        feed(t, {.flags = tf::kSyn, .seq = 1, .wscale = k.c_ws, .sack_ok = k.c_sack,
                 .tsval = k.c_ts ? std::optional<std::uint32_t>(5) : std::nullopt});
        feed(t, {.src = kServer, .dst = kClient, .flags = tf::kSyn | tf::kAck, .seq = 7, .ack = 2,
                 .wscale = k.s_ws, .sack_ok = k.s_sack,
                 .tsval = k.s_ts ? std::optional<std::uint32_t>(9) : std::nullopt});
        const Connection* c = t.find({kClient, kServer});
        ASSERT_NE(c, nullptr) << k.name;
        EXPECT_EQ(c->sack_in_use(), k.sack) << k.name;
        EXPECT_EQ(c->timestamps_in_use(), k.ts) << k.name;
        EXPECT_EQ(c->wscale_in_use(), k.ws) << k.name;
    }
}

TEST(ConnectionTable, WindowScaleShiftIsCappedAt14) {
    ConnectionTable t({});
    feed(t, {.flags = tf::kSyn, .seq = 1, .wscale = 15});
    feed(t, {.src = kServer, .dst = kClient, .flags = tf::kSyn | tf::kAck, .seq = 7, .ack = 2,
             .wscale = 200});
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->client_wscale(), 14);  // RFC 7323 §2.3
    EXPECT_EQ(c->server_wscale(), 14);
}

TEST(ConnectionTable, AckPointsAndTimestampsKeepTheSerialMaximumAcrossWrap) {
    ConnectionTable t({});
    const std::uint32_t cisn = 0xfffffff0u;
    const std::uint32_t sisn = 0xffffff00u;
    handshake(t, cisn, sisn, kClient, 0xfffffff0u, 0xffffff00u);
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    // Client sends 40 bytes across the wrap; server acks them, then an old ACK arrives.
    feed(t, {.seq = cisn + 1, .ack = sisn + 1, .payload = std::string(40, 'x'),
             .tsval = 0xfffffffeu});
    feed(t, {.src = kServer, .dst = kClient, .seq = sisn + 1, .ack = cisn + 41,
             .tsval = 0x00000003u});
    feed(t, {.src = kServer, .dst = kClient, .seq = sisn + 1, .ack = cisn + 11,
             .tsval = 0xfffffff0u});
    EXPECT_EQ(c->server_ack_high, SeqNum{cisn + 41});
    EXPECT_EQ(c->server_ack_high->raw(), 0x00000019u);  // wrapped
    EXPECT_EQ(c->client_bytes_acked(), 40u);
    EXPECT_EQ(c->server_tsval_high, 0x00000003u);  // 0xfffffff0 is older in serial order
    EXPECT_EQ(c->client_tsval_high, 0xfffffffeu);
    EXPECT_EQ(c->client_seq_next, SeqNum{cisn + 41});
}

TEST(ConnectionTable, HoldsExactlyTheUnacknowledgedClientBytes) {
    ConnectionTable t({});
    handshake(t, 1000, 5000);
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    feed(t, {.seq = 1001, .ack = 5001, .payload = "alpha-"});
    feed(t, {.seq = 1007, .ack = 5001, .payload = "bravo-"});
    feed(t, {.seq = 1013, .ack = 5001, .payload = "charlie"});
    EXPECT_EQ(held(*c), "alpha-bravo-charlie");
    EXPECT_TRUE(c->can_replay_unacked());
    EXPECT_EQ(c->unacked_in_flight(), 19u);

    feed(t, {.src = kServer, .dst = kClient, .seq = 5001, .ack = 1007});
    EXPECT_EQ(held(*c), "bravo-charlie");
    EXPECT_EQ(c->unacked_base, SeqNum{1007});
    EXPECT_TRUE(c->can_replay_unacked());

    // Retransmission overlapping held bytes and extending them adds only the new part.
    feed(t, {.seq = 1007, .ack = 5001, .payload = "bravo-charlie-delta"});
    EXPECT_EQ(held(*c), "bravo-charlie-delta");
    EXPECT_EQ(t.counters().buffered_bytes, 19u);

    feed(t, {.src = kServer, .dst = kClient, .seq = 5001, .ack = 1026});
    EXPECT_EQ(held(*c), "");
    EXPECT_EQ(t.counters().buffered_bytes, 0u);
    EXPECT_TRUE(c->can_replay_unacked());
}

TEST(ConnectionTable, CaptureGapMakesReplayImpossibleUntilAckedPast) {
    ConnectionTable t({});
    handshake(t, 1000, 5000);
    const Connection* c = t.find({kClient, kServer});
    feed(t, {.seq = 1001, .ack = 5001, .payload = "aaaa"});
    feed(t, {.seq = 1009, .ack = 5001, .payload = "cccc"});  // bytes 1005..1008 never seen
    EXPECT_EQ(t.counters().buffer_gaps, 1u);
    EXPECT_EQ(held(*c), "aaaa");
    EXPECT_FALSE(c->can_replay_unacked());
    // The server got everything; A passes the hole and the buffer heals.
    feed(t, {.src = kServer, .dst = kClient, .seq = 5001, .ack = 1013});
    EXPECT_TRUE(c->can_replay_unacked());
    feed(t, {.seq = 1013, .ack = 5001, .payload = "dddd"});
    EXPECT_EQ(held(*c), "dddd");
    EXPECT_TRUE(c->can_replay_unacked());
}

TEST(ConnectionTable, PerConnectionCapRefusesAndMarksTheConnection) {
    TableConfig cfg;
    cfg.per_connection_buffer_cap = 10;
    ConnectionTable t(cfg);
    handshake(t, 1000, 5000);
    const Connection* c = t.find({kClient, kServer});
    feed(t, {.seq = 1001, .ack = 5001, .payload = "12345678"});
    feed(t, {.seq = 1009, .ack = 5001, .payload = "abcd"});
    EXPECT_EQ(t.counters().buffer_cap_per_connection, 1u);
    EXPECT_TRUE(c->buffer_overflowed);
    EXPECT_FALSE(c->can_replay_unacked());
    EXPECT_EQ(held(*c), "12345678");
}

TEST(ConnectionTable, GlobalCapIsSharedAcrossConnections) {
    TableConfig cfg;
    cfg.global_buffer_cap = 12;
    ConnectionTable t(cfg);
    const Endpoint c2{kClient.ip, Port{40001}};
    handshake(t, 1000, 5000);
    handshake(t, 2000, 6000, c2);
    feed(t, {.seq = 1001, .ack = 5001, .payload = "12345678"});
    feed(t, {.src = c2, .dst = kServer, .seq = 2001, .ack = 6001, .payload = "abcdefgh"});
    EXPECT_EQ(t.counters().buffer_cap_global, 1u);
    EXPECT_FALSE(t.find({c2, kServer})->can_replay_unacked());
    EXPECT_TRUE(t.find({kClient, kServer})->can_replay_unacked());
    EXPECT_EQ(t.counters().buffered_bytes, 8u);
}

TEST(ConnectionTable, FinInBothDirectionsAcknowledgedClosesTheConnection) {
    ConnectionTable t({});
    handshake(t, 1000, 5000);
    const Connection* c = t.find({kClient, kServer});
    feed(t, {.seq = 1001, .ack = 5001, .payload = "hello"});
    feed(t, {.flags = tf::kFin | tf::kAck, .seq = 1006, .ack = 5001});
    EXPECT_EQ(c->state, TcpState::Closing);
    feed(t, {.src = kServer, .dst = kClient, .flags = tf::kFin | tf::kAck, .seq = 5001,
             .ack = 1007});
    EXPECT_EQ(c->state, TcpState::Closing);  // server's FIN not yet acknowledged
    EXPECT_EQ(c->client_bytes_acked(), 5u);  // the FIN is not a byte
    feed(t, {.seq = 1007, .ack = 5002});
    EXPECT_EQ(c->state, TcpState::Closed);
    EXPECT_EQ(c->server_bytes_acked(), 0u);
}

TEST(ConnectionTable, ResetClosesAndFreesHeldBytes) {
    ConnectionTable t({});
    handshake(t, 1000, 5000);
    feed(t, {.seq = 1001, .ack = 5001, .payload = "pending"});
    EXPECT_EQ(t.counters().buffered_bytes, 7u);
    feed(t, {.flags = tf::kRst, .seq = 1008});
    const Connection* c = t.find({kClient, kServer});
    EXPECT_EQ(c->state, TcpState::Closed);
    EXPECT_TRUE(c->rst_seen);
    EXPECT_EQ(t.counters().buffered_bytes, 0u);
}

TEST(ConnectionTable, RstForUnknownConnectionIsCountedNotTracked) {
    ConnectionTable t({});
    feed(t, {.flags = tf::kRst, .seq = 1});
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.counters().unknown_rst, 1u);
}

TEST(ConnectionTable, MidStreamConnectionIsPartialAndRolesFollowTheServerList) {
    TableConfig cfg;
    cfg.servers = {kServer};
    ConnectionTable t(cfg);
    // First packet seen is the server's data toward the client.
    auto obs = feed(t, {.src = kServer, .dst = kClient, .seq = 7777, .ack = 4444,
                        .payload = "reply"});
    ASSERT_NE(obs.connection, nullptr);
    EXPECT_EQ(obs.direction, Direction::FromServer);
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->partial);
    EXPECT_EQ(c->state, TcpState::Established);
    EXPECT_FALSE(c->client_isn.has_value());
    EXPECT_FALSE(c->client_bytes_acked().has_value());
    EXPECT_EQ(t.counters().created_partial, 1u);
    // Without a handshake the held bytes start where the capture did.
    feed(t, {.seq = 4444, .ack = 7782, .payload = "req2"});
    EXPECT_EQ(held(*c), "req2");
    EXPECT_TRUE(c->can_replay_unacked());
}

TEST(ConnectionTable, FactsFromAnotherMemberCompleteAConnectionPickedUpMidStream) {
    TableConfig cfg;
    cfg.servers = {kServer};
    ConnectionTable t(cfg);
    feed(t, {.src = kServer, .dst = kClient, .seq = 7777, .ack = 4444, .payload = "reply"});
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    ASSERT_FALSE(c->handshake_seen());
    HandshakeFacts f{.key = {kClient, kServer}, .client_isn = SeqNum{4000}, .server_isn = SeqNum{7000},
                     .client_mss = 1400, .server_mss = 1460, .client_wscale = 7, .server_wscale = 9,
                     .client_sack = true, .server_sack = true};
    const auto gen = t.generation();
    EXPECT_TRUE(t.restore(f, 2));
    EXPECT_NE(t.generation(), gen);
    EXPECT_TRUE(c->handshake_seen());
    EXPECT_TRUE(c->restored);
    EXPECT_EQ(c->client_wscale_offered, std::optional<std::uint8_t>{7});
    EXPECT_EQ(c->server_mss, std::optional<std::uint16_t>{1460});
    EXPECT_TRUE(c->sack_in_use());
    EXPECT_EQ(t.size(), 1u);
    // Known with its handshake now: the same facts again teach nothing.
    EXPECT_FALSE(t.restore(f, 3));
    EXPECT_EQ(t.counters().restored, 1u);
}

TEST(ConnectionTable, FactsNeverOverwriteAHandshakeSeenHere) {
    ConnectionTable t({});
    handshake(t, 100, 900);
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    const auto isn = c->client_isn;
    HandshakeFacts f{.key = {kClient, kServer}, .client_isn = SeqNum{5}, .server_isn = SeqNum{6}};
    EXPECT_FALSE(t.restore(f, 2));
    EXPECT_EQ(c->client_isn, isn);
}

TEST(ConnectionTable, MidStreamWithoutServerListTakesTheLowerPortAsServer) {
    ConnectionTable t({});
    feed(t, {.src = kServer, .dst = kClient, .seq = 1, .ack = 2, .payload = "x"});
    EXPECT_NE(t.find({kClient, kServer}), nullptr);
    ConnectionTable t2({});
    feed(t2, {.src = kClient, .dst = kServer, .seq = 1, .ack = 2, .payload = "x"});
    EXPECT_NE(t2.find({kClient, kServer}), nullptr);
}

TEST(ConnectionTable, UnprotectedTrafficIsCountedAndIgnored) {
    TableConfig cfg;
    cfg.servers = {kServer};
    ConnectionTable t(cfg);
    feed(t, {.src = kClient, .dst = kOther, .flags = tf::kSyn, .seq = 1});
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.counters().not_protected, 1u);
    feed(t, {.src = kClient, .dst = kServer, .flags = tf::kSyn, .seq = 1});
    EXPECT_EQ(t.size(), 1u);
}

TEST(ConnectionTable, FullTableEvictsClosedFirstThenLeastRecentlySeen) {
    TableConfig cfg;
    cfg.max_connections = 3;
    ConnectionTable t(cfg);
    auto client = [](std::uint16_t port) { return Endpoint{kClient.ip, Port{port}}; };
    handshake(t, 100, 900, client(1));
    handshake(t, 200, 900, client(2));
    handshake(t, 300, 900, client(3));
    feed(t, {.src = client(2), .dst = kServer, .flags = tf::kRst, .seq = 201});
    feed(t, {.src = client(1), .dst = kServer, .seq = 101, .ack = 901, .payload = "a"}, 50);
    handshake(t, 400, 900, client(4));  // evicts the closed #2
    EXPECT_EQ(t.find({client(2), kServer}), nullptr);
    EXPECT_EQ(t.counters().evicted_closed, 1u);
    handshake(t, 500, 900, client(5));  // evicts #3: #1 was seen more recently
    EXPECT_EQ(t.find({client(3), kServer}), nullptr);
    EXPECT_NE(t.find({client(1), kServer}), nullptr);
    EXPECT_EQ(t.counters().evicted_idle, 1u);
    EXPECT_EQ(t.size(), 3u);
}

TEST(ConnectionTable, ForEachVisitsInCreationOrderAcrossRemovalsAndReusedSlots) {
    TableConfig cfg;
    cfg.max_connections = 3;
    ConnectionTable t(cfg);
    auto client = [](std::uint16_t port) { return Endpoint{kClient.ip, Port{port}}; };
    auto ports = [&] {
        std::vector<std::uint16_t> out;
        std::uint64_t last_id = 0;
        t.for_each([&](const Connection& c) {
            EXPECT_GT(c.id, last_id);
            last_id = c.id;
            out.push_back(c.key.client.port.value);
        });
        return out;
    };
    handshake(t, 100, 900, client(1));
    handshake(t, 200, 900, client(2));
    handshake(t, 300, 900, client(3));
    EXPECT_EQ(ports(), (std::vector<std::uint16_t>{1, 2, 3}));
    feed(t, {.src = client(2), .dst = kServer, .flags = tf::kRst, .seq = 201});
    handshake(t, 400, 900, client(4));  // evicts the closed #2; #4 takes its slot
    EXPECT_EQ(ports(), (std::vector<std::uint16_t>{1, 3, 4}));
    handshake(t, 500, 900, client(5));  // evicts #1 (least recently seen), the head
    EXPECT_EQ(ports(), (std::vector<std::uint16_t>{3, 4, 5}));
    feed(t, {.src = client(5), .dst = kServer, .flags = tf::kRst, .seq = 501});
    handshake(t, 600, 900, client(6));  // evicts the closed #5, the tail
    EXPECT_EQ(ports(), (std::vector<std::uint16_t>{3, 4, 6}));
}

TEST(ConnectionTable, ExpiryUsesPacketTimeForIdleAndClosedConnections) {
    TableConfig cfg;
    cfg.idle_timeout_ns = 1000;
    cfg.closed_linger_ns = 100;
    ConnectionTable t(cfg);
    const Endpoint c2{kClient.ip, Port{40001}};
    feed(t, {.flags = tf::kSyn, .seq = 1}, 0);
    feed(t, {.src = c2, .dst = kServer, .flags = tf::kSyn, .seq = 1}, 500);
    feed(t, {.src = c2, .dst = kServer, .flags = tf::kRst, .seq = 2}, 600);
    t.expire(650);
    EXPECT_EQ(t.size(), 2u);
    t.expire(701);
    EXPECT_EQ(t.size(), 1u);
    EXPECT_EQ(t.counters().expired_closed, 1u);
    t.expire(1001);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.counters().expired_idle, 1u);
}

TEST(ConnectionTable, NewSynOnAClosedTupleStartsANewConnection) {
    ConnectionTable t({});
    handshake(t, 1000, 5000);
    feed(t, {.flags = tf::kRst, .seq = 1001});
    handshake(t, 777777, 888888);
    const Connection* c = t.find({kClient, kServer});
    EXPECT_EQ(c->state, TcpState::Established);
    EXPECT_EQ(c->client_isn, SeqNum{777777});
    EXPECT_EQ(t.counters().reincarnated, 1u);
    EXPECT_EQ(t.size(), 1u);
}

TEST(ConnectionTable, MemoryPerConnectionIsSmall) {
    // Slot + hash node (key, value, next pointer, cached hash) + bucket pointer.
    const std::size_t node = sizeof(Endpoint) * 2 + sizeof(std::uint32_t) + 2 * sizeof(void*);
    const std::size_t per_connection = sizeof(Connection) + node + sizeof(void*);
    RecordProperty("connection_bytes", static_cast<int>(sizeof(Connection)));
    RecordProperty("per_connection_bytes", static_cast<int>(per_connection));
    std::printf("memory per connection (no byte copies): Connection=%zu B, with index ~%zu B\n",
                sizeof(Connection), per_connection);
    EXPECT_LE(per_connection, 384u);
}

TEST(ConnectionTable, DataFlowingShowsAHandshakeWhoseSynAckTheCaptureLost) {
    ConnectionTable t({});
    feed(t, {.flags = tf::kSyn, .seq = 100});
    // The SYN-ACK never captured; the client's ACK and its first bytes are.
    feed(t, {.seq = 101, .ack = 9001});
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->state, TcpState::Handshake) << "a bare ACK proves nothing yet";
    feed(t, {.seq = 101, .ack = 9001, .payload = "GET"});
    EXPECT_EQ(c->state, TcpState::Established);
    EXPECT_FALSE(c->handshake_seen());  // recovered with inferred options
    EXPECT_EQ(t.counters().synack_unseen, 1u);
    // ... or the server's bytes.
    ConnectionTable u({});
    feed(u, {.flags = tf::kSyn, .seq = 100});
    feed(u, {.src = kServer, .dst = kClient, .seq = 9001, .ack = 101, .payload = "220 ready"});
    EXPECT_EQ(u.find({kClient, kServer})->state, TcpState::Established);
}

// ---------------------------------------------------------------- replay (issue 13)

TableConfig replay_config(ReplayMode mode, std::size_t cap = 1u << 20) {
    TableConfig c;
    c.servers = {kServer};
    c.replay_mode = mode;
    c.per_connection_buffer_cap = cap;
    return c;
}

std::uint64_t digest_of(std::string_view s) {
    return digest_update(kDigestBasis, std::as_bytes(std::span(s.data(), s.size())));
}

// Client 100/101.., server 9000/9001..; a request and a reply of two segments.
void request(ConnectionTable& t, std::uint32_t q, std::uint32_t k, const std::string& req) {
    feed(t, {.seq = 101 + q, .ack = 9001 + k, .payload = req});
}
void server_data(ConnectionTable& t, std::uint32_t r, std::uint32_t a, const std::string& data) {
    feed(t, {.src = kServer, .dst = kClient, .seq = 9001 + r, .ack = 101 + a, .payload = data});
}
void client_ack(ConnectionTable& t, std::uint32_t q, std::uint32_t k) {
    feed(t, {.seq = 101 + q, .ack = 9001 + k});
}

TEST(ConnectionTableReplay, TurnsMarkWhereEachRequestAndItsReplyBegin) {
    ConnectionTable t(replay_config(ReplayMode::Aligned));
    handshake(t, 100, 9000);
    request(t, 0, 0, "GET1");
    const Connection* c = t.find({kClient, kServer});
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->replay->q0, SeqNum{101});
    EXPECT_EQ(c->replay->r0, SeqNum{9001});
    server_data(t, 0, 4, "0123456789");
    client_ack(t, 4, 10);
    request(t, 4, 10, "GET2");
    EXPECT_EQ(c->replay->q0, SeqNum{105});
    EXPECT_EQ(c->replay->r0, SeqNum{9011});
    EXPECT_EQ(t.counters().replay_turns, 2u);
    // The request stays held after the server acknowledges it; the one
    // before it is gone.
    server_data(t, 10, 8, "abcde");
    EXPECT_EQ(held(*c), "GET2");
    client_ack(t, 8, 15);
    ReplayFallback why{};
    const auto plan = c->replay_plan(ReplayMode::Aligned, why);
    ASSERT_TRUE(plan.has_value()) << name_of(why);
    EXPECT_EQ(plan->client_from, SeqNum{105});
    EXPECT_EQ(plan->server_from, SeqNum{9011});
    EXPECT_EQ(plan->until, SeqNum{9016});
    EXPECT_EQ(plan->digest, digest_of("abcde"));
    // A request in two segments is one turn.
    request(t, 8, 15, "GE");
    request(t, 10, 15, "T3");
    EXPECT_EQ(c->replay->q0, SeqNum{109});
    EXPECT_EQ(held(*c), "GET3");
    EXPECT_EQ(t.counters().replay_turns, 3u);
}

TEST(ConnectionTableReplay, TheDigestCoversOnlyAcknowledgedWholeSegments) {
    ConnectionTable t(replay_config(ReplayMode::Aligned));
    handshake(t, 100, 9000);
    request(t, 0, 0, "GET1");
    server_data(t, 0, 4, "abcde");
    server_data(t, 5, 4, "fghij");
    server_data(t, 5, 4, "fghij");  // a retransmission changes nothing
    const Connection* c = t.find({kClient, kServer});
    client_ack(t, 4, 5);
    ReplayFallback why{};
    auto plan = c->replay_plan(ReplayMode::Aligned, why);
    ASSERT_TRUE(plan.has_value());
    EXPECT_EQ(plan->digest, digest_of("abcde"));
    client_ack(t, 4, 10);
    plan = c->replay_plan(ReplayMode::Aligned, why);
    ASSERT_TRUE(plan.has_value());
    EXPECT_EQ(plan->digest, digest_of("abcdefghij"));
    EXPECT_EQ(t.counters().replay_digested_bytes, 10u);
    // An ACK inside a segment leaves no digest to compare with.
    ConnectionTable u(replay_config(ReplayMode::Aligned));
    handshake(u, 100, 9000);
    request(u, 0, 0, "GET1");
    server_data(u, 0, 4, "abcde");
    client_ack(u, 4, 3);
    EXPECT_FALSE(u.find({kClient, kServer})->replay_plan(ReplayMode::Aligned, why).has_value());
    EXPECT_EQ(why, ReplayFallback::NoMark);
}

TEST(ConnectionTableReplay, ServerBytesMissedOrAClientThatAskedEarlyCannotBeAligned) {
    ConnectionTable t(replay_config(ReplayMode::Aligned));
    handshake(t, 100, 9000);
    request(t, 0, 0, "GET1");
    server_data(t, 5, 4, "fghij");  // [0, 5) never seen
    client_ack(t, 4, 10);
    ReplayFallback why{};
    EXPECT_FALSE(t.find({kClient, kServer})->replay_plan(ReplayMode::Aligned, why).has_value());
    EXPECT_EQ(why, ReplayFallback::DigestBroken);
    // The next request starts a clean turn.
    request(t, 4, 10, "GET2");
    server_data(t, 10, 8, "xy");
    client_ack(t, 8, 12);
    auto plan = t.find({kClient, kServer})->replay_plan(ReplayMode::Aligned, why);
    ASSERT_TRUE(plan.has_value());
    EXPECT_EQ(plan->digest, digest_of("xy"));

    // Pipelined: the second request leaves before the first reply is acknowledged.
    ConnectionTable u(replay_config(ReplayMode::Aligned));
    handshake(u, 100, 9000);
    request(u, 0, 0, "GET1");
    server_data(u, 0, 4, "abcde");
    request(u, 4, 0, "GET2");
    client_ack(u, 8, 0);
    EXPECT_FALSE(u.find({kClient, kServer})->replay_plan(ReplayMode::Aligned, why).has_value());
    EXPECT_EQ(why, ReplayFallback::Pipelined);
}

TEST(ConnectionTableReplay, ServerSegmentsReorderedByTheHubAreDigestedInOrder) {
    ConnectionTable t(replay_config(ReplayMode::Full));
    handshake(t, 100, 9000);
    request(t, 0, 0, "GET1");
    server_data(t, 0, 4, "abc");
    server_data(t, 6, 4, "ghi");   // ahead of [3, 6)
    server_data(t, 9, 4, "jk");
    server_data(t, 6, 4, "ghi");   // a duplicate of one held
    const Connection* c = t.find({kClient, kServer});
    EXPECT_EQ(c->replay->digest_end, SeqNum{9004});
    EXPECT_EQ(t.counters().replay_reordered, 2u);
    server_data(t, 3, 4, "def");   // the hole fills: everything follows in order
    EXPECT_EQ(c->replay->digest_end, SeqNum{9012});
    EXPECT_TRUE(c->replay->early.empty());
    EXPECT_EQ(t.counters().replay_digest_gaps, 0u);
    EXPECT_EQ(t.counters().replay_digested_bytes, 11u);
    client_ack(t, 4, 9);  // a mark at each segment's end, held ones too
    ReplayFallback why{};
    auto plan = c->replay_plan(ReplayMode::Aligned, why);
    ASSERT_TRUE(plan.has_value()) << name_of(why);
    EXPECT_EQ(plan->digest, digest_of("abcdefghi"));
    client_ack(t, 4, 11);
    plan = c->replay_plan(ReplayMode::Full, why);
    ASSERT_TRUE(plan.has_value()) << name_of(why);
    EXPECT_EQ(plan->digest, digest_of("abcdefghijk"));
    // A hole that never fills: the client's ACK past it finds no digest.
    ConnectionTable u(replay_config(ReplayMode::Aligned));
    handshake(u, 100, 9000);
    request(u, 0, 0, "GET1");
    server_data(u, 0, 4, "abc");
    server_data(u, 6, 4, "ghi");
    client_ack(u, 4, 9);
    EXPECT_FALSE(u.find({kClient, kServer})->replay_plan(ReplayMode::Aligned, why).has_value());
    EXPECT_EQ(why, ReplayFallback::DigestBroken);
}

TEST(ConnectionTableReplay, CheckpointsSpanTheWholeSessionInFullModeAndOneTurnInAligned) {
    // 40 requests with 4000-byte replies: 160,000 bytes of server stream,
    // no single reply near the 64 KiB spacing.
    for (ReplayMode mode : {ReplayMode::Full, ReplayMode::Aligned}) {
        ConnectionTable t(replay_config(mode));
        handshake(t, 100, 9000);
        const std::string reply(4000, 'r');
        std::uint32_t q = 0, r = 0;
        for (int i = 0; i < 40; ++i) {
            request(t, q, r, "GET" + std::to_string(i % 10));
            q += 4;
            server_data(t, r, q, reply);
            r += 4000;
            client_ack(t, q, r);
        }
        const Connection* c = t.find({kClient, kServer});
        ReplayFallback why{};
        const auto plan = c->replay_plan(mode, why);
        ASSERT_TRUE(plan.has_value()) << name_of(why);
        if (mode == ReplayMode::Full) {
            // At the first segment end at or past each 64 KiB: 68,000 and 136,000.
            ASSERT_EQ(plan->checkpoints.size(), 2u);
            EXPECT_EQ(plan->checkpoints[0].first, SeqNum{9001 + 68'000});
            EXPECT_EQ(plan->checkpoints[1].first, SeqNum{9001 + 136'000});
            EXPECT_EQ(plan->checkpoints[0].second, digest_of(std::string(68'000, 'r')));
        } else {
            EXPECT_TRUE(plan->checkpoints.empty());  // one 4000-byte reply: none inside it
        }
    }
}

TEST(ConnectionTableReplay, FullHoldsEverySinceTheHandshakeUntilItsCapThenAligned) {
    ConnectionTable t(replay_config(ReplayMode::Full, 10));
    handshake(t, 100, 9000);
    request(t, 0, 0, "GET1");
    server_data(t, 0, 4, "abc");
    client_ack(t, 4, 3);
    request(t, 4, 3, "GET2");
    server_data(t, 3, 8, "de");
    client_ack(t, 8, 5);
    const Connection* c = t.find({kClient, kServer});
    EXPECT_EQ(held(*c), "GET1GET2");
    ReplayFallback why{};
    auto plan = c->replay_plan(ReplayMode::Full, why);
    ASSERT_TRUE(plan.has_value()) << name_of(why);
    EXPECT_EQ(plan->client_from, SeqNum{101});
    EXPECT_EQ(plan->server_from, SeqNum{9001});
    EXPECT_EQ(plan->digest, digest_of("abcde"));
    // 12 bytes would exceed the cap of 10: aligned from now on.
    request(t, 8, 5, "GET3");
    EXPECT_EQ(t.counters().replay_full_over_cap, 1u);
    EXPECT_EQ(c->replay_mode, ReplayMode::Aligned);
    EXPECT_EQ(held(*c), "GET3");
    EXPECT_FALSE(c->replay_plan(ReplayMode::Full, why).has_value());
    EXPECT_EQ(why, ReplayFallback::NotFromStart);
}

TEST(ConnectionTableReplay, ARequestOverTheCapIsNotReplayable) {
    ConnectionTable t(replay_config(ReplayMode::Aligned, 6));
    handshake(t, 100, 9000);
    request(t, 0, 0, "GET1");
    server_data(t, 0, 4, "ok");
    client_ack(t, 4, 2);
    request(t, 4, 2, "POST");
    feed(t, {.src = kServer, .dst = kClient, .seq = 9003, .ack = 109});  // acked, not answered
    request(t, 8, 2, "body");  // 8 > 6
    EXPECT_EQ(t.counters().replay_request_over_cap, 1u);
    EXPECT_EQ(t.counters().buffer_cap_per_connection, 0u);  // A is held as in push
    const Connection* c = t.find({kClient, kServer});
    EXPECT_EQ(held(*c), "body");
    ReplayFallback why{};
    EXPECT_FALSE(c->replay_plan(ReplayMode::Aligned, why).has_value());
    EXPECT_EQ(why, ReplayFallback::TurnNotHeld);
}

TEST(ConnectionTableReplay, PushKeepsNoTurnsAndEachPortHasItsMode) {
    TableConfig cfg = replay_config(ReplayMode::Push);
    cfg.servers.push_back(kOther);
    cfg.port_modes = {{7001, ReplayMode::Full}};
    EXPECT_EQ(cfg.mode_for(7000), ReplayMode::Push);
    EXPECT_EQ(cfg.mode_for(7001), ReplayMode::Full);
    ConnectionTable t(cfg);
    handshake(t, 100, 9000);
    request(t, 0, 0, "GET1");
    server_data(t, 0, 4, "abc");
    const Connection* c = t.find({kClient, kServer});
    EXPECT_EQ(c->replay_mode, ReplayMode::Push);
    EXPECT_EQ(c->replay, nullptr);  // push connections carry no replay state
    EXPECT_EQ(held(*c), "");
    EXPECT_EQ(t.counters().replay_turns, 0u);
    EXPECT_EQ(t.counters().replay_digested_bytes, 0u);
}

// When no plan can be made, push is exact only for a reply seen whole and
// acknowledged (or an idle connection); anything else is reset.
TEST(ConnectionTableReplay, PushIsExactOnlyForAReplySeenWholeAndAcknowledged) {
    const auto check = [](const ConnectionTable& t, bool lost = false) {
        return t.find({kClient, kServer})->push_check(lost).risk;
    };
    // Seen whole and acknowledged: exact, unless the capture lost frames
    // after the connection's last one (the reply may have gone on unseen).
    ConnectionTable whole(replay_config(ReplayMode::Aligned));
    handshake(whole, 100, 9000);
    request(whole, 0, 0, "GET1");
    server_data(whole, 0, 4, "abcde");
    client_ack(whole, 4, 5);
    EXPECT_EQ(check(whole), PushRisk::None);
    EXPECT_EQ(check(whole, true), PushRisk::ReplyNotSeenWhole);
    // Bytes in flight.
    server_data(whole, 5, 4, "fg");
    EXPECT_EQ(check(whole), PushRisk::ReplyInFlight);

    // A hole in what migware saw of the reply, everything acknowledged: the
    // CI failure (the capture dropped frames, the digest had gaps).
    ConnectionTable hole(replay_config(ReplayMode::Aligned));
    handshake(hole, 100, 9000);
    request(hole, 0, 0, "GET1");
    server_data(hole, 0, 4, "abcde");
    server_data(hole, 10, 4, "klmno");  // [5, 10) never seen
    client_ack(hole, 4, 15);
    ReplayFallback why{};
    EXPECT_FALSE(hole.find({kClient, kServer})->replay_plan(ReplayMode::Aligned, why).has_value());
    EXPECT_EQ(why, ReplayFallback::DigestBroken);
    EXPECT_EQ(check(hole), PushRisk::ReplyNotSeenWhole);

    // The client acknowledges bytes the capture never showed (the tail lost).
    ConnectionTable tail(replay_config(ReplayMode::Aligned));
    handshake(tail, 100, 9000);
    request(tail, 0, 0, "GET1");
    server_data(tail, 0, 4, "abcde");
    client_ack(tail, 4, 9);
    EXPECT_EQ(check(tail), PushRisk::ReplyNotSeenWhole);

    // A request the server took and never answered, too big to hold.
    ConnectionTable req(replay_config(ReplayMode::Aligned, 6));
    handshake(req, 100, 9000);
    request(req, 0, 0, "GET1");
    server_data(req, 0, 4, "ok");
    client_ack(req, 4, 2);
    request(req, 4, 2, "POST");
    request(req, 8, 2, "body");  // over the cap of 6
    feed(req, {.src = kServer, .dst = kClient, .seq = 9003, .ack = 113});  // acknowledged, not answered
    EXPECT_FALSE(req.find({kClient, kServer})->replay_plan(ReplayMode::Aligned, why).has_value());
    EXPECT_EQ(why, ReplayFallback::TurnNotHeld);
    EXPECT_EQ(check(req), PushRisk::RequestUnanswered);

    // Idle since the handshake: nothing is missing.
    ConnectionTable idle(replay_config(ReplayMode::Aligned));
    handshake(idle, 100, 9000);
    EXPECT_EQ(check(idle), PushRisk::None);

    // Picked up mid-stream, server data and no request seen: its reply may
    // have begun before migware looked.
    ConnectionTable mid(replay_config(ReplayMode::Aligned));
    server_data(mid, 0, 0, "abcde");
    client_ack(mid, 0, 5);
    EXPECT_EQ(check(mid), PushRisk::ReplyNotSeenWhole);
}

}  // namespace
}  // namespace migware::tracker
