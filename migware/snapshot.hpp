#pragma once
// The restart snapshot: handshake facts (ISNs, negotiated options, MACs) of
// the open connections, which the wire never shows again. Everything else a
// restarted migware picks up from mid-stream traffic.
//
// Format (text, version 1, one connection per line; see DESIGN-NOTES.md):
//   migware-snapshot 1 <count>
//   <client> <server> <cisn> <sisn> <cmss> <smss> <cws> <sws> <csack> <ssack> <cts> <sts> <cmac> <smac> <vlan>
//   ...
//   end <crc32 of every byte before this line, 8 hex digits>
// '-' stands for an absent option. Written to a temporary file, fsync'd and
// renamed over the old one, so a crash leaves the old or the new file whole.

#include <string>
#include <string_view>
#include <vector>

#include "tracker/connection.hpp"

namespace migware {

inline constexpr int kSnapshotVersion = 1;

std::string serialize_snapshot(const std::vector<tracker::HandshakeFacts>& facts);

struct SnapshotParse {
    std::vector<tracker::HandshakeFacts> facts;
    std::string error;  // empty on success; else one line saying what is wrong
};
SnapshotParse parse_snapshot(std::string_view text);

/// Atomic replace. Returns an error line, or empty on success.
std::string write_snapshot_file(const std::string& path, const std::string& contents);
/// Reads the whole file. `exists` false when there is none (not an error).
std::string read_snapshot_file(const std::string& path, bool& exists, std::string& error);

std::uint32_t crc32(std::string_view data);

}  // namespace migware
