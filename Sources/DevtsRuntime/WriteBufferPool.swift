/// Reuses the fixed-size buffers that outgoing frames are batched into, and the write requests that
/// carry them, so that steady writing does not allocate. Confined to its loop's thread.
final class WriteBufferPool {
    /// The size of a pooled buffer: writes are batched up to about this many bytes.
    static let bufferSize = 64 * 1024
    /// Four connections at an 8 MiB high-water mark hold 512 buffers: keep that many and more.
    private static let maxSpare = 1024
    private var spare: [UnsafeMutableRawPointer] = []
    private var spareRequests: [UnsafeMutablePointer<PendingWrite>] = []
    /// Bytes of buffers taken and not given back: what the loop's connections hold for writing.
    private(set) var bytesInUse = 0

    /// A buffer of at least `minimumCapacity` bytes, and its capacity.
    func take(minimumCapacity: Int) -> (UnsafeMutableRawPointer, Int) {
        bytesInUse += max(minimumCapacity, Self.bufferSize)
        if minimumCapacity <= Self.bufferSize {
            if let buffer = spare.popLast() { return (buffer, Self.bufferSize) }
            return (.allocate(byteCount: Self.bufferSize, alignment: 16), Self.bufferSize)
        }
        return (.allocate(byteCount: minimumCapacity, alignment: 16), minimumCapacity)
    }

    /// Gives a buffer back; pooled when it has the standard size and the pool is not full.
    func give(_ buffer: UnsafeMutableRawPointer, capacity: Int) {
        bytesInUse -= capacity
        if capacity == Self.bufferSize && spare.count < Self.maxSpare {
            spare.append(buffer)
        } else {
            buffer.deallocate()
        }
    }

    /// Memory for one write request (uninitialized).
    func takeRequest() -> UnsafeMutablePointer<PendingWrite> {
        spareRequests.popLast() ?? .allocate(capacity: 1)
    }

    /// Gives back a write request's memory (already deinitialized).
    func giveRequest(_ request: UnsafeMutablePointer<PendingWrite>) {
        if spareRequests.count < Self.maxSpare {
            spareRequests.append(request)
        } else {
            request.deallocate()
        }
    }

    deinit {
        for buffer in spare { buffer.deallocate() }
        for request in spareRequests { request.deallocate() }
    }
}
