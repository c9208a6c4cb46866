// myrelayctl's output: tables as the mysql client draws them, and JSON (see ctl.h).
#include "ctl/ctl.h"

#include <cstdlib>

namespace myrelay::ctl {

// Length of the valid UTF-8 sequence starting at s[i], or 0.
size_t utf8_len(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (cc & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Text as it may safely reach a terminal: names and databases come from
// clients, so control characters (C0, DEL and C1) and non-UTF-8 bytes become
// '?' rather than move the operator's cursor.  `width` gets the number of
// characters.
// Plain printable ASCII, nearly every cell: nothing to replace, one byte a
// character.
bool plain_ascii(std::string_view s) {
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

std::string printable(std::string_view s, size_t& width) {
  if (plain_ascii(s)) {
    width = s.size();
    return std::string(s);
  }
  std::string out;
  width = 0;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_len(s, i);
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool c1 = n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0;
    if (n == 0 || c1 || (n == 1 && (c < 0x20 || c == 0x7f))) {
      out += '?';
      i += n ? n : 1;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
    ++width;
  }
  return out;
}

std::string_view cell_text(const Cell& cell, std::string& scratch, size_t& width) {
  if (!cell) {
    width = 4;
    return "NULL";
  }
  if (plain_ascii(*cell)) {
    width = cell->size();
    return *cell;
  }
  scratch = printable(*cell, width);
  return scratch;
}

void print_table(FILE* out, const Table& t) {
  const size_t ncol = t.columns.size();
  std::vector<std::string> head(ncol);
  std::vector<size_t> head_widths(ncol), widths(ncol);
  for (size_t c = 0; c < ncol; ++c) {
    head[c] = printable(t.columns[c], head_widths[c]);
    widths[c] = head_widths[c];
  }
  // Two passes over the rows, widths first, so no cell is copied.
  static const Cell kNull;
  auto cell_of = [](const Row& r, size_t c) -> const Cell& { return c < r.size() ? r[c] : kNull; };
  std::string scratch;
  size_t w = 0;
  for (const Row& r : t.rows)
    for (size_t c = 0; c < ncol; ++c) {
      cell_text(cell_of(r, c), scratch, w);
      widths[c] = std::max(widths[c], w);
    }
  std::string border = "+";
  for (size_t cw : widths) border.append(cw + 2, '-').append("+");
  border += "\n";
  std::string buf;
  buf.reserve(64 * 1024 + border.size());
  auto put = [&](std::string_view text, size_t width, size_t c, bool right) {
    size_t pad = widths[c] - width;
    buf += ' ';
    if (right) buf.append(pad, ' ');
    buf += text;
    if (!right) buf.append(pad, ' ');
    buf += " |";
  };
  auto flush_if_big = [&] {
    if (buf.size() < 64 * 1024) return;
    fwrite(buf.data(), 1, buf.size(), out);
    buf.clear();
  };
  // Column names are left-aligned, numbers right-aligned, as mysql does.
  buf += border;
  buf += '|';
  for (size_t c = 0; c < ncol; ++c) put(head[c], head_widths[c], c, false);
  buf += '\n';
  buf += border;
  for (const Row& r : t.rows) {
    buf += '|';
    for (size_t c = 0; c < ncol; ++c) {
      std::string_view text = cell_text(cell_of(r, c), scratch, w);
      put(text, w, c, c < t.numeric.size() && t.numeric[c]);
    }
    buf += '\n';
    flush_if_big();
  }
  buf += border;
  fwrite(buf.data(), 1, buf.size(), out);
}

void print_row_count(size_t n) {
  if (n == 0)
    puts("Empty set");
  else
    printf("%zu %s in set\n", n, n == 1 ? "row" : "rows");
}

// A small JSON writer: output is always valid JSON, whatever bytes the
// strings hold (invalid UTF-8 becomes U+FFFD).
void print_json(const Json& j) {
  fputs(j.text().c_str(), stdout);
  fputc('\n', stdout);
}

// A numeric cell of session_row() or session_attributes() as a number.
uint64_t to_u64(const std::string& s) { return strtoull(s.c_str(), nullptr, 10); }

void json_rows(Json& j, const Table& t) {
  j.begin_array();
  for (const Row& r : t.rows) {
    j.begin_object();
    for (size_t c = 0; c < t.columns.size(); ++c) {
      j.key(t.columns[c]);
      if (!r[c])
        j.null();
      else if (t.numeric[c])
        j.num(to_u64(*r[c]));
      else
        j.str(*r[c]);
    }
    j.end_object();
  }
  j.end_array();
}

}  // namespace myrelay::ctl
