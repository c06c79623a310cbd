// First pass of the CPU labeling: the provisional labels of one strip of rows and the union-find that
// joins them, SAUF per pixel for 4-connectivity and 2 × 2 blocks for 8-connectivity. The algorithm
// alone: which strips there are and how they are joined is components_merge.cc's, what is gathered
// per component components_stats.cc's.
#include <algorithm>
#include <array>
#include <cstdint>

#include "components_internal.h"

namespace pgn {

// ---- first pass, 4-connectivity: SAUF (Wu, Otoo & Suzuki) ---------------------------------------

uint32_t sauf4_strip(const Image& img, int64_t r0, int64_t r1, uint32_t* L, uint32_t* P, uint32_t next,
                     uint8_t* mbuf) {
  const int64_t w = img.w;
  uint8_t* prev = mbuf;
  uint8_t* cur = mbuf + mask_row_bytes(w);
  clear_row(prev, w);  // no row above the strip's first row
  clear_row(cur, w);
  for (int64_t y = r0; y < r1; ++y) {
    threshold_row(img, y, cur);
    const uint8_t* mc = cur + 1;
    const uint8_t* mp = prev + 1;
    uint32_t* Lc = L + y * w;
    const uint32_t* Lp = y > r0 ? Lc - w : Lc;  // never read on the strip's first row: mp is all 0
    uint32_t left = 0;                          // label of (x − 1, y), 0 = background
    for (int64_t x = 0; x < w; ++x) {
      uint32_t lab = 0;
      if (mc[x]) {
        if (mp[x]) {
          lab = left ? merge(P, Lp[x], left) : Lp[x];
        } else if (left) {
          lab = left;
        } else {
          lab = next++;
          P[lab] = lab;
        }
      }
      Lc[x] = lab;
      left = lab;
    }
    std::swap(prev, cur);
  }
  return next;
}

namespace {

// ---- first pass, 8-connectivity: 2 × 2 blocks (Grana, Borghesani & Cucchiara's BBDT scheme) ---
//
// All foreground pixels of a 2 × 2 block X are 8-connected, so one provisional label per block
// suffices, and X is connected to its already-labelled neighbour blocks P (up-left), Q (up),
// R (up-right) and S (left) through 10 pixels:
//
//        pd | qc qd | rc          row 2r − 1     bit 0..3
//        sb | a  b  |             row 2r         bit 4..6  (sb a b)
//        sd | c  d  |             row 2r + 1     bit 7..9  (sd c d)
//
// X–P: a & pd;  X–Q: (a | b) & (qc | qd);  X–R: b & rc;  X–S: (a | c) & (sb | sd).
// Some neighbour pairs are known to be joined already from the same pixels (S–Q: sb & qc, S–P:
// sb & pd, P–Q: pd & qc, Q–R: qd & rc): those need no union. Instead of BBDT's decision tree over
// the 16 pixels of the 4 × 4 window, the action for each of the 1024 patterns of these 10 pixels is
// computed once into a table: the neighbour label to copy and the ones to merge.
//
// Raster order. Final labels must follow the raster order of the components' first pixels, and
// flattening numbers roots in label order; but a block can hold pixels of both of its rows, so
// blocks are not in pixel raster order. Hence two label ranges per block row: blocks whose first
// pixel is on the upper row open labels in [base, base + cap), the others in [base + cap, base +
// 2·cap). And a block with an upper-row pixel that is joined only to S, whose label is from the
// lower range, opens an upper label too (and merges): its upper pixel may be the first of the
// component, since such an S holds pixels of the lower row only. Roots are then the labels of the
// components' first pixels.

enum BlockWho : uint8_t { kP = 0, kQ = 1, kR = 2, kS = 3 };

struct BlockAction {
  int8_t n;          // −1: X is background; 0: new label; 1..3: labels to join, who[0] first
  bool upper;        // X has a pixel on its upper row
  bool upper_from_s; // n == 1, who[0] == S, upper: open an upper label if S's is a lower one
  uint8_t who[3];
};

std::array<BlockAction, 1024> make_block_actions() {
  std::array<BlockAction, 1024> table{};
  for (int idx = 0; idx < 1024; ++idx) {
    auto bit = [idx](int k) { return (idx >> k) & 1; };
    const int pd = bit(0), qc = bit(1), qd = bit(2), rc = bit(3), sb = bit(4), a = bit(5), b = bit(6), sd = bit(7),
              c = bit(8), d = bit(9);
    BlockAction& act = table[static_cast<size_t>(idx)];
    act.upper = (a | b) != 0;
    if (!(a | b | c | d)) {
      act.n = -1;
      continue;
    }
    const bool joined[4] = {(a & pd) != 0, ((a | b) & (qc | qd)) != 0, (b & rc) != 0, ((a | c) & (sb | sd)) != 0};
    int group[4] = {0, 1, 2, 3};
    auto unite = [&group](int u, int v) {
      const int gu = group[u], gv = group[v];
      for (int& g : group)
        if (g == gv) g = gu;
    };
    if (sb & qc) unite(kS, kQ);
    if (sb & pd) unite(kS, kP);
    if (pd & qc) unite(kP, kQ);
    if (qd & rc) unite(kQ, kR);
    act.n = 0;
    bool taken[4] = {false, false, false, false};
    for (int who : {kQ, kS, kP, kR}) {  // Q first: it touches most of the others
      if (!joined[who] || taken[group[who]]) continue;
      taken[group[who]] = true;
      act.who[act.n++] = static_cast<uint8_t>(who);
    }
    act.upper_from_s = act.n == 1 && act.who[0] == kS && act.upper;
  }
  return table;
}

const std::array<BlockAction, 1024>& block_actions() {
  static const std::array<BlockAction, 1024> table = make_block_actions();
  return table;
}

}  // namespace

void block_strip(const Image& img, const BlockGrid& g, int64_t r0, int64_t r1, uint32_t* B, const uint32_t* zero_row,
                 uint32_t* P, uint32_t base, uint32_t* ends, uint8_t* mbuf, uint64_t* fg) {
  const int64_t w = img.w, words = mask_words(w), row_bytes = mask_row_bytes(w);
  const std::array<BlockAction, 1024>& actions = block_actions();
  uint8_t* m0 = mbuf;                  // row 2r − 1
  uint8_t* m1 = mbuf + row_bytes;      // row 2r
  uint8_t* m2 = mbuf + 2 * row_bytes;  // row 2r + 1
  clear_row(m0, w);
  clear_row(m1, w);
  clear_row(m2, w);
  for (int64_t y = r0, j = 0; y < r1; y += 2, ++j) {
    threshold_row(img, y, m1);
    pack_bits(m1 + 1, words, fg + y * words);
    if (y + 1 < r1) {
      threshold_row(img, y + 1, m2);
      pack_bits(m2 + 1, words, fg + (y + 1) * words);
    } else {
      clear_row(m2, w);
    }
    uint32_t* Bc = B + (y / 2) * g.stride + 1;
    Bc[-1] = Bc[g.bw] = Bc[g.bw + 1] = 0;
    const uint32_t* Bp = (y > r0 ? Bc - g.stride : zero_row + 1);  // read only where m0 has pixels
    uint32_t upper_next = base + static_cast<uint32_t>(2 * j) * g.cap;
    const uint32_t lower_base = upper_next + g.cap;
    uint32_t lower_next = lower_base;
    uint32_t left = 0;  // label of S
    for (int64_t bx = 0; bx < g.bw; ++bx) {
      const int64_t x = 2 * bx;  // m[x] is pixel x − 1
      const int idx = m0[x] | m0[x + 1] << 1 | m0[x + 2] << 2 | m0[x + 3] << 3 | m1[x] << 4 | m1[x + 1] << 5 |
                      m1[x + 2] << 6 | m2[x] << 7 | m2[x + 1] << 8 | m2[x + 2] << 9;
      const BlockAction& act = actions[static_cast<size_t>(idx)];
      const uint32_t nb[4] = {Bp[bx - 1], Bp[bx], Bp[bx + 1], left};
      uint32_t lab;
      switch (act.n) {
        case -1:
          lab = 0;
          break;
        case 0:
          lab = act.upper ? upper_next++ : lower_next++;
          P[lab] = lab;
          break;
        case 1:
          lab = nb[act.who[0]];
          if (act.upper_from_s && lab >= lower_base) {
            const uint32_t fresh = upper_next++;
            P[fresh] = fresh;
            lab = merge(P, fresh, lab);
          }
          break;
        case 2:
          lab = merge(P, nb[act.who[0]], nb[act.who[1]]);
          break;
        default:
          lab = merge(P, merge(P, nb[act.who[0]], nb[act.who[1]]), nb[act.who[2]]);
          break;
      }
      Bc[bx] = lab;
      left = lab;
    }
    ends[2 * j] = upper_next;
    ends[2 * j + 1] = lower_next;
    std::swap(m0, m2);  // the lower row becomes the row above the next block row
  }
}

}  // namespace pgn
