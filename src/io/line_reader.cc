// LineReader: a chunked reader that hands out lines as views into one buffer.
//
// Layers: ByteSource (a local file, or a store's object read ahead in
// chunks: byte_source.h) -> Source (counts its bytes, pushes the sniffed magic
// bytes back) -> Decoder (plain, gzip or zstd; fills a caller buffer with
// text) -> LineReaderImpl (finds '\n' with memchr; moves only a partial line
// at a chunk boundary to the front of the buffer, growing it for a line
// longer than the buffer, up to max_line_bytes).

#include "virga/line_reader.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

#include "io/byte_source.h"
#include "virga/object_store.h"

namespace virga {
namespace {

constexpr size_t kMaxInputChunk = 1 << 20;  // compressed bytes read per call

// The raw bytes of the input, counted. The first bytes, read to sniff the
// format, are served again before the rest of the input.
class Source {
 public:
  explicit Source(std::unique_ptr<io_internal::ByteSource> raw) : raw_(std::move(raw)) {}

  // Reads up to n bytes into dst; *got == 0 only at end of file.
  Status Read(char* dst, size_t n, size_t* got) {
    if (head_pos_ < head_len_) {
      *got = std::min(n, head_len_ - head_pos_);
      std::memcpy(dst, head_ + head_pos_, *got);
      head_pos_ += *got;
      return Status::OK();
    }
    VIRGA_RETURN_IF_ERROR(raw_->Read(dst, n, got));
    bytes_read_ += *got;
    return Status::OK();
  }

  // Reads the first (up to) 4 bytes for format detection, however few bytes
  // each read of the source returns.
  Status Sniff() {
    while (head_len_ < sizeof(head_)) {
      size_t got = 0;
      VIRGA_RETURN_IF_ERROR(raw_->Read(head_ + head_len_, sizeof(head_) - head_len_, &got));
      if (got == 0) break;
      head_len_ += got;
      bytes_read_ += got;
    }
    return Status::OK();
  }
  bool HeadIs(const unsigned char* magic, size_t len) const {
    return head_len_ >= len && std::memcmp(head_, magic, len) == 0;
  }
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  const std::unique_ptr<io_internal::ByteSource> raw_;
  char head_[4];
  size_t head_len_ = 0;
  size_t head_pos_ = 0;
  uint64_t bytes_read_ = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Fills dst with up to n bytes of text; *got == 0 only at the end of the
  // input. A stream cut short is an error, never a short read.
  virtual Status Read(char* dst, size_t n, size_t* got) = 0;
};

class PlainDecoder final : public Decoder {
 public:
  explicit PlainDecoder(Source* src) : src_(src) {}
  Status Read(char* dst, size_t n, size_t* got) override { return src_->Read(dst, n, got); }

 private:
  Source* const src_;
};

// Compressed input staged in a buffer of its own.
class InputBuffer {
 public:
  InputBuffer(Source* src, size_t cap) : src_(src), cap_(cap), buf_(new char[cap]) {}
  // Reads more input when all of it was consumed. Sets eof() at end of file.
  Status Refill(const char** next, size_t* avail) {
    size_t got = 0;
    VIRGA_RETURN_IF_ERROR(src_->Read(buf_.get(), cap_, &got));
    eof_ = got == 0;
    *next = buf_.get();
    *avail = got;
    return Status::OK();
  }
  bool eof() const { return eof_; }

 private:
  Source* const src_;
  const size_t cap_;
  std::unique_ptr<char[]> buf_;
  bool eof_ = false;
};

// gzip, including files of several concatenated members (as `cat a.gz b.gz`).
class GzipDecoder final : public Decoder {
 public:
  GzipDecoder(Source* src, size_t in_cap) : in_(src, in_cap) {}
  ~GzipDecoder() override {
    if (init_) inflateEnd(&z_);
  }

  Status Init() {
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) return Status::Internal("inflateInit2 failed");
    init_ = true;
    return Status::OK();
  }

  Status Read(char* dst, size_t n, size_t* got) override {
    z_.next_out = reinterpret_cast<Bytef*>(dst);
    z_.avail_out = static_cast<uInt>(std::min<size_t>(n, UINT_MAX));
    const uInt want = z_.avail_out;
    while (z_.avail_out > 0) {
      if (z_.avail_in == 0 && !in_.eof()) {
        const char* next = nullptr;
        size_t avail = 0;
        VIRGA_RETURN_IF_ERROR(in_.Refill(&next, &avail));
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(next));
        z_.avail_in = static_cast<uInt>(avail);
      }
      if (!in_member_) {
        if (z_.avail_in == 0) {
          if (in_.eof()) break;  // clean end after a complete member
          continue;
        }
        inflateReset(&z_);  // another member follows
        in_member_ = true;
      }
      int r = inflate(&z_, Z_NO_FLUSH);
      if (r == Z_STREAM_END) {
        in_member_ = false;
      } else if (r == Z_BUF_ERROR) {  // no progress possible: needs input
        if (z_.avail_in == 0 && in_.eof()) {
          return Status::Corruption("truncated gzip stream (unexpected end of file)");
        }
      } else if (r != Z_OK) {
        return Status::Corruption(std::string("bad gzip data: ") +
                                  (z_.msg != nullptr ? z_.msg : "inflate error"));
      }
    }
    *got = want - z_.avail_out;
    return Status::OK();
  }

 private:
  InputBuffer in_;
  z_stream z_{};
  bool init_ = false;
  bool in_member_ = false;
};

// zstd; ZSTD_decompressStream handles concatenated frames by itself.
class ZstdDecoder final : public Decoder {
 public:
  ZstdDecoder(Source* src, size_t in_cap) : in_(src, in_cap), dctx_(ZSTD_createDCtx()) {}
  ~ZstdDecoder() override { ZSTD_freeDCtx(dctx_); }

  Status Init() { return dctx_ != nullptr ? Status::OK() : Status::Internal("ZSTD_createDCtx"); }

  Status Read(char* dst, size_t n, size_t* got) override {
    ZSTD_outBuffer out{dst, n, 0};
    while (out.pos < out.size) {
      if (zin_.pos == zin_.size && !in_.eof()) {
        const char* next = nullptr;
        size_t avail = 0;
        VIRGA_RETURN_IF_ERROR(in_.Refill(&next, &avail));
        zin_ = {next, avail, 0};
      }
      // At end of file, keep calling while the decoder still flushes output.
      if (zin_.pos == zin_.size && in_.eof() && pending_ == 0) break;
      const size_t before = out.pos;
      size_t r = ZSTD_decompressStream(dctx_, &out, &zin_);
      if (ZSTD_isError(r)) {
        return Status::Corruption(std::string("bad zstd data: ") + ZSTD_getErrorName(r));
      }
      pending_ = r;  // 0 exactly when a frame is complete and flushed
      if (zin_.pos == zin_.size && in_.eof() && out.pos == before && pending_ != 0) {
        return Status::Corruption("truncated zstd stream (unexpected end of file)");
      }
    }
    *got = out.pos;
    return Status::OK();
  }

 private:
  InputBuffer in_;
  ZSTD_DCtx* const dctx_;
  ZSTD_inBuffer zin_{nullptr, 0, 0};
  size_t pending_ = 1;  // nonzero: inside a frame
};

class LineReaderImpl final : public LineReader {
 public:
  LineReaderImpl(std::string path, const LineReaderOptions& options, std::unique_ptr<Source> src)
      : path_(std::move(path)),
        max_line_(std::min<size_t>(options.max_line_bytes, SIZE_MAX / 4)),
        cap_(std::max<size_t>(options.buffer_bytes, 1)),
        buf_(std::make_unique_for_overwrite<char[]>(cap_)),
        src_(std::move(src)) {}

  // A byte range of a file already known to be uncompressed: no sniffing
  // (the range may start mid-file).
  Status InitPlain() {
    decoder_ = std::make_unique<PlainDecoder>(src_.get());
    return Status::OK();
  }

  Status Init(const LineReaderOptions& options) {
    static constexpr unsigned char kGzip[] = {0x1f, 0x8b};
    static constexpr unsigned char kZstd[] = {0x28, 0xb5, 0x2f, 0xfd};
    VIRGA_RETURN_IF_ERROR(src_->Sniff().WithContext(path_));
    const size_t in_cap = std::clamp<size_t>(options.buffer_bytes / 4, 1, kMaxInputChunk);
    if (src_->HeadIs(kGzip, sizeof(kGzip))) {
      auto gz = std::make_unique<GzipDecoder>(src_.get(), in_cap);
      VIRGA_RETURN_IF_ERROR(gz->Init());
      decoder_ = std::move(gz);
    } else if (src_->HeadIs(kZstd, sizeof(kZstd))) {
      auto zs = std::make_unique<ZstdDecoder>(src_.get(), in_cap);
      VIRGA_RETURN_IF_ERROR(zs->Init());
      decoder_ = std::move(zs);
    } else {
      decoder_ = std::make_unique<PlainDecoder>(src_.get());
    }
    return Status::OK();
  }

  Result<bool> Next(std::string_view* line) override {
    if (!status_.ok()) return status_;
    if (done_) return false;
    for (;;) {
      const char* nl =
          static_cast<const char*>(std::memchr(buf_.get() + scan_, '\n', end_ - scan_));
      if (nl != nullptr) {
        size_t next = static_cast<size_t>(nl - buf_.get()) + 1;
        if (!Accept(next)) {
          if (done_) return false;
          continue;
        }
        text_bytes_ += next - pos_;
        return Deliver(next - 1, next, line);
      }
      scan_ = end_;
      if (eof_) {
        if (pos_ == end_ || !Accept(end_)) return false;
        text_bytes_ += end_ - pos_;
        return Deliver(end_, end_, line);  // the last line lacks '\n'
      }
      Status s = Fill();
      if (!s.ok()) return status_ = s;
    }
  }

  // Range bookkeeping for the line buf_[pos_, next): false when it is not
  // returned, either the partial line before the range (consumed) or a line
  // starting at or past range_end (done_ is then set).
  bool Accept(size_t next) {
    const uint64_t at = base_ + consumed_ + pos_;
    if (range_end_ != 0 && at >= range_end_) {
      done_ = true;
      return false;
    }
    if (skip_first_) {
      skip_first_ = false;
      pos_ = scan_ = next;
      return false;
    }
    line_offset_ = at;
    return true;
  }

  std::string Where() const override {
    if (ranged_) return path_ + " at byte " + std::to_string(line_offset_);
    return path_ + ":" + std::to_string(line_number_);
  }

  // Reading a byte range: the source starts at `base` (range_begin - 1, or
  // 0); with `skip_first` the first line found is the tail of a line that
  // started before the range.
  void SetRange(uint64_t base, bool skip_first, uint64_t range_end) {
    ranged_ = true;
    base_ = base;
    skip_first_ = skip_first;
    range_end_ = range_end;
  }

  uint64_t line_number() const override { return line_number_; }
  uint64_t file_bytes_read() const override { return src_->bytes_read(); }
  uint64_t text_bytes_read() const override { return text_bytes_; }
  const std::string& path() const override { return path_; }

 private:
  // Returns buf_[pos_, stop) minus a trailing '\r' as the next line.
  Result<bool> Deliver(size_t stop, size_t next, std::string_view* line) {
    size_t len = stop - pos_;
    if (len > 0 && buf_[stop - 1] == '\r') --len;
    ++line_number_;
    if (len > max_line_) return status_ = TooLong(line_number_);
    *line = std::string_view(buf_.get() + pos_, len);
    pos_ = scan_ = next;
    return true;
  }

  Status TooLong(uint64_t line) const {
    return Status::ResourceExhausted(path_ + ":" + std::to_string(line) +
                                     ": line longer than max_line_bytes (" +
                                     std::to_string(max_line_) + ")");
  }

  // REQUIRES: no '\n' in buf_[pos_, end_). Keeps that partial line (moved to
  // the front; the buffer grows if it is full of it) and appends more text.
  Status Fill() {
    const size_t partial = end_ - pos_;
    if (partial > max_line_ + 1) return TooLong(line_number_ + 1);  // +1: room for '\r'
    if (pos_ > 0) {
      consumed_ += pos_;
      std::memmove(buf_.get(), buf_.get() + pos_, partial);
      pos_ = 0;
      scan_ = end_ = partial;
    }
    if (end_ == cap_) {
      size_t new_cap = std::min(std::max<size_t>(cap_ * 2, 64), max_line_ + 2);
      auto bigger = std::make_unique_for_overwrite<char[]>(new_cap);
      std::memcpy(bigger.get(), buf_.get(), end_);
      buf_ = std::move(bigger);
      cap_ = new_cap;
    }
    size_t got = 0;
    Status s = decoder_->Read(buf_.get() + end_, cap_ - end_, &got);
    if (!s.ok()) return s.WithContext(path_ + ":" + std::to_string(line_number_ + 1));
    eof_ = got == 0;
    end_ += got;
    return Status::OK();
  }

  const std::string path_;
  const size_t max_line_;
  size_t cap_;
  std::unique_ptr<char[]> buf_;
  size_t pos_ = 0;   // start of the next line
  size_t scan_ = 0;  // buf_[pos_, scan_) is known to hold no '\n'
  size_t end_ = 0;   // end of valid text
  bool eof_ = false;
  uint64_t line_number_ = 0;
  uint64_t text_bytes_ = 0;
  // Byte ranges (SetRange).
  bool ranged_ = false;
  bool skip_first_ = false;
  bool done_ = false;
  uint64_t base_ = 0;         // file offset of the source's first byte
  uint64_t consumed_ = 0;     // bytes moved out of the buffer's front so far
  uint64_t range_end_ = 0;    // 0: none
  uint64_t line_offset_ = 0;  // file offset of the line last returned
  Status status_;  // sticky: once an error is returned, every later Next returns it
  std::unique_ptr<Source> src_;
  std::unique_ptr<Decoder> decoder_;  // reads from *src_
};

// The bytes of `path` from byte `offset` on: an object through its store,
// else a local file.
Result<std::unique_ptr<io_internal::ByteSource>> OpenBytes(const std::string& path,
                                                           const LineReaderOptions& options,
                                                           uint64_t offset) {
  if (IsObjectUri(path)) {
    VIRGA_ASSIGN_OR_RETURN(ObjectRef ref, OpenObjectUri(path));
    io_internal::ObjectSourceOptions o;
    o.chunk_bytes = options.object_chunk_bytes;
    o.chunks_ahead = options.object_chunks_ahead;
    o.offset = offset;
    if (options.range_end != 0) o.soft_end = options.range_end;
    return io_internal::OpenObjectSource(std::move(ref.store), std::move(ref.key), path, o);
  }
  std::string_view local = path;
  if (local.starts_with("file://")) local.remove_prefix(7);  // file:///abs, file://rel
  return io_internal::OpenFileSource(std::string(local), path, offset);
}

}  // namespace

Result<bool> IsCompressedInput(const std::string& path) {
  static constexpr unsigned char kGzip[] = {0x1f, 0x8b};
  static constexpr unsigned char kZstd[] = {0x28, 0xb5, 0x2f, 0xfd};
  std::string head;
  if (IsObjectUri(path)) {
    VIRGA_ASSIGN_OR_RETURN(ObjectRef ref, OpenObjectUri(path));
    VIRGA_ASSIGN_OR_RETURN(ObjectInfo info, ref.store->Stat(ref.key));
    if (info.size > 0) {
      VIRGA_RETURN_IF_ERROR(ref.store->GetRange(ref.key, 0, std::min<uint64_t>(info.size, 4), &head)
                                .WithContext(path));
    }
  } else {
    VIRGA_ASSIGN_OR_RETURN(auto bytes, OpenBytes(path, LineReaderOptions{}, 0));
    char buf[4];
    size_t got = 0;
    while (head.size() < sizeof buf) {
      VIRGA_RETURN_IF_ERROR(bytes->Read(buf, sizeof buf - head.size(), &got).WithContext(path));
      if (got == 0) break;
      head.append(buf, got);
    }
  }
  auto starts = [&](const unsigned char* magic, size_t n) {
    return head.size() >= n && std::memcmp(head.data(), magic, n) == 0;
  };
  return starts(kGzip, sizeof kGzip) || starts(kZstd, sizeof kZstd);
}

Result<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path,
                                                     const LineReaderOptions& options) {
  const bool ranged = options.range_begin != 0 || options.range_end != 0;
  if (ranged) {
    if (options.range_end != 0 && options.range_end <= options.range_begin) {
      return Status::InvalidArgument(path + ": empty byte range [" +
                                     std::to_string(options.range_begin) + ", " +
                                     std::to_string(options.range_end) + ")");
    }
    VIRGA_ASSIGN_OR_RETURN(const bool compressed, IsCompressedInput(path));
    if (compressed) {
      return Status::InvalidArgument(path +
                                     ": a compressed file cannot be read by byte ranges; "
                                     "split it into several files, or read it whole");
    }
  }
  const uint64_t base = options.range_begin == 0 ? 0 : options.range_begin - 1;
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<io_internal::ByteSource> bytes,
                         OpenBytes(path, options, base));
  auto reader = std::make_unique<LineReaderImpl>(path, options,
                                                 std::make_unique<Source>(std::move(bytes)));
  if (ranged) {
    reader->SetRange(base, options.range_begin != 0, options.range_end);
    VIRGA_RETURN_IF_ERROR(reader->InitPlain());
  } else {
    VIRGA_RETURN_IF_ERROR(reader->Init(options));
  }
  return std::unique_ptr<LineReader>(std::move(reader));
}

}  // namespace virga
