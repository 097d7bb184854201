#include "tracker/byte_ring.hpp"

#include <algorithm>
#include <cstring>

namespace migware::tracker {

void ByteRing::grow(std::size_t min_capacity) {
    std::size_t cap = capacity_ ? capacity_ : 2048;
    while (cap < min_capacity) cap *= 2;
    auto fresh = std::make_unique<std::byte[]>(cap);
    copy_out(0, std::span<std::byte>(fresh.get(), size_));
    data_ = std::move(fresh);
    capacity_ = static_cast<std::uint32_t>(cap);
    head_ = 0;
}

void ByteRing::push_back(std::span<const std::byte> bytes) {
    if (bytes.empty()) return;
    if (size_ + bytes.size() > capacity_) grow(size_ + bytes.size());
    const std::size_t tail = (head_ + size_) & (capacity_ - 1);
    const std::size_t first = std::min(bytes.size(), capacity_ - tail);
    std::memcpy(data_.get() + tail, bytes.data(), first);
    std::memcpy(data_.get(), bytes.data() + first, bytes.size() - first);
    size_ += static_cast<std::uint32_t>(bytes.size());
}

void ByteRing::pop_front(std::size_t n) {
    if (n >= size_) {
        // Keep the memory: in steady traffic every ACK drains the ring, and
        // freeing here would cost an allocation per data segment.
        head_ = 0;
        size_ = 0;
        return;
    }
    head_ = (head_ + static_cast<std::uint32_t>(n)) & (capacity_ - 1);
    size_ -= static_cast<std::uint32_t>(n);
}

bool ByteRing::copy_out(std::size_t offset, std::span<std::byte> out) const {
    if (offset > size_ || out.size() > size_ - offset) return false;
    if (out.empty()) return true;
    const std::size_t start = (head_ + offset) & (capacity_ - 1);
    const std::size_t first = std::min(out.size(), capacity_ - start);
    std::memcpy(out.data(), data_.get() + start, first);
    std::memcpy(out.data() + first, data_.get(), out.size() - first);
    return true;
}

void ByteRing::clear() {
    data_.reset();
    capacity_ = 0;
    head_ = 0;
    size_ = 0;
}

}  // namespace migware::tracker
