#pragma once
// A growable circular byte buffer: the copy of client bytes the server has
// not acknowledged yet. Empty rings own no memory, so idle connections stay
// small. A drained ring keeps its memory until clear() (connection closed).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace migware::tracker {

class ByteRing {
public:
    ByteRing() = default;
    ByteRing(ByteRing&&) noexcept = default;
    ByteRing& operator=(ByteRing&&) noexcept = default;

    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }

    void push_back(std::span<const std::byte> bytes);
    /// Drops up to n bytes from the front.
    void pop_front(std::size_t n);
    /// Copies bytes [offset, offset + out.size()) of the ring into out.
    /// Returns false (and copies nothing) if that range is not held.
    bool copy_out(std::size_t offset, std::span<std::byte> out) const;
    /// Empties the ring and frees its memory.
    void clear();

private:
    void grow(std::size_t min_capacity);

    std::unique_ptr<std::byte[]> data_;
    std::uint32_t capacity_ = 0;  // a power of two, or 0
    std::uint32_t head_ = 0;
    std::uint32_t size_ = 0;
};

}  // namespace migware::tracker
