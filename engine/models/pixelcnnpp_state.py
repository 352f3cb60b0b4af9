"""PixelCNN++'s generation state: the network's forward kept per call as one buffer per intermediate
tensor, and re-run after each pixel on the positions that pixel can change only (a cache in the spirit
of Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models", adapted to
PixelCNN++'s three resolutions).

Why it is exact: every operation reads only the rows above and its own row, and in the `ul` stream its
own row only to the left, at every resolution (a stride-2 convolution's (k, c) reads rows 2k-1, 2k and
columns up to 2c of the finer level; an upsampling's rows 2k, 2k+1 read row k of the coarser one), so
`ul` at (k, c) of resolution level l depends on the pixels before (2^l k, 2^l c) in raster order, and
`u` (strictly the rows above) on the rows before 2^l k. Hence, after pixel (i, j) is fed:
- within a row, `u` is unchanged, and `ul` is recomputed at one position per level: (i, j+1) at full
  resolution, and (i / 2^l, (j+1) / 2^l) at level l only where i is a multiple of 2^l (otherwise that
  row of level l depends on rows above i only, and is final);
- at the end of a row, both streams are recomputed on rows i / 2^l .. (i+1) / 2^l of every level, whole.
Each convolution is a matrix product over the taps its kernel reads around those positions (weights
reshaped once per call), which for one position costs microseconds where a library convolution call on
a tiny input costs about a millisecond. bench/fast_states.py measures the state against the naive one;
tests/test_interface.py and tests/test_pixelcnnpp.py hold it equal to the naive state.

Memory: a buffer keeps only the last RING = 4 rows of its resolution (a ring: row r in slot r % 4), not the
whole image. An update's box spans at most two rows of a level (k = i >> l and the one after it), and
what it reads lies at most two rows above the box (a stride-2 convolution at level l+1 reads rows 2k'-1
and 2k' of level l, with 2k' >= (i >> l) - 1), so four rows always hold everything still to be read. The
state is primed row by row for the same reason: the row-end update for each row before the first pixel
to sample (the whole-image forward would not fit in four rows). At 28x28 and 128 rows (4 completions x
32 particles) its buffers take 84 MB instead of 472 MB (peak RSS of a bottom-half completion 0.68 GB
instead of 1.4 GB, CPU), at the same speed per pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.models.logistic_mixture import bin_centres


def celu(x: torch.Tensor) -> torch.Tensor:
    """concat_elu on channel-last tensors (..., C) -> (..., 2C)."""
    return F.elu(torch.cat([x, -x], dim=-1))


RING = 4  # rows kept per buffer and resolution (see the module's docstring)


class Rows:
    """A channel-last (B, H, W, C) tensor of which only the last `tensor.shape[1]` rows are kept, row r in
    slot r % that (all H rows when it equals H: the network's input)."""

    def __init__(self, tensor: torch.Tensor, height: int):
        self.tensor, self.height = tensor, height

    @property
    def width(self) -> int:
        return self.tensor.shape[2]

    @property
    def channels(self) -> int:
        return self.tensor.shape[3]

    def rows(self, r0: int, r1: int) -> torch.Tensor:
        """Rows r0 .. r1-1 (0 <= r0, r1 <= height, at most the kept count, all still kept) -> (B, r1-r0, W, C)."""
        kept = self.tensor.shape[1]
        if kept == self.height:
            return self.tensor[:, r0:r1]
        a, n = r0 % kept, max(r1 - r0, 0)
        if a + n <= kept:
            return self.tensor[:, a:a + n]
        return torch.cat([self.tensor[:, a:], self.tensor[:, :a + n - kept]], dim=1)

    def write(self, r0: int, c0: int, c1: int, value: torch.Tensor) -> None:
        """value (B, n, c1-c0, C) into rows r0 .. r0+n-1, columns c0 .. c1-1."""
        kept = self.tensor.shape[1]
        for k in range(value.shape[1]):
            self.tensor[:, (r0 + k) % kept, c0:c1] = value[:, k]


def region(t: Rows, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
    """t's rows r0:r1 and columns c0:c1 (B, r1-r0, c1-c0, C), zeros where the window leaves the image."""
    H, W = t.height, t.width
    part = t.rows(max(r0, 0), min(r1, H))[:, :, max(c0, 0):min(c1, W)]
    pads = (0, 0, max(-c0, 0), max(c1 - W, 0), max(-r0, 0), max(r1 - H, 0))
    return F.pad(part, pads) if any(pads) else part


class _Conv:
    """A shifted convolution as a matrix product over its taps: down-right (`right`) reads columns
    c-kw+1 .. c, down-shifted columns c-kw//2 .. c+kw//2; both rows s*r-kh+1 .. s*r."""

    def __init__(self, conv, right: bool):
        kh, kw = conv.kernel_size
        self.kh, self.kw, self.s = kh, kw, conv.stride[0]
        self.left = kw - 1 if right else (kw - 1) // 2
        self.weight = conv.weight.permute(2, 3, 1, 0).reshape(-1, conv.out_channels)  # (kh*kw*Cin, Cout), taps row-major
        self.bias = conv.bias

    def __call__(self, t: torch.Tensor, box, pre=None) -> torch.Tensor:
        """Input (B, H, W, Cin) -> output (B, r1-r0, c1-c0, Cout) on box (r0, r1, c0, c1); `pre` maps the read window first."""
        r0, r1, c0, c1 = box
        s, kh, kw = self.s, self.kh, self.kw
        win = region(t, s * r0 - kh + 1, s * (r1 - 1) + 1, s * c0 - self.left, s * (c1 - 1) - self.left + kw)
        if pre is not None:
            win = pre(win)
        nr, nc = r1 - r0, c1 - c0
        taps = [win[:, a:a + s * (nr - 1) + 1:s, b:b + s * (nc - 1) + 1:s] for a in range(kh) for b in range(kw)]
        return torch.addmm(self.bias, torch.cat(taps, dim=-1).reshape(-1, self.weight.shape[0]), self.weight).view(
            win.shape[0], nr, nc, -1)


class PixelCNNPlusPlusState:
    """Per-call state: `log_probs` (B, Q) for the next pixel, `step(levels)`, `reorder(index)`."""

    def __init__(self, model, prefix: torch.Tensor, cond: torch.Tensor | None):
        if prefix.dim() != 2:
            raise ValueError(f"prefix must have shape (B, T), got {tuple(prefix.shape)}.")
        c = model.config
        N = model.sequence_length
        B, T0 = prefix.shape
        if T0 > N:
            raise ValueError(f"prefix has {T0} values but the image has only {N} pixels.")
        self.model = model
        image = torch.zeros(B, N, dtype=torch.long, device=model.head.weight.device)
        image[:, :T0] = prefix.long()
        image, cond = model._check(image, cond)
        self.t = T0
        with torch.no_grad():
            self.centres = bin_centres(c.quantization_levels, model.head.weight.dtype, image.device)  # a level's input value
            x = model.inputs(image.view(B, c.height, c.width)).permute(0, 2, 3, 1).contiguous()  # (B, H', W', 2)
            self.x = Rows(x, x.shape[1])  # the input keeps every row
            self._prepare(cond)
            self.buffers = []
            # primed row by row: the row-end update of each row before the next pixel's (and row 0 first)
            for i in range(-1, min(T0 // c.width, c.height - 1)):
                self._row_end(i)
                self._forward()
            self.log_probs = self._pixel() if T0 < N else None

    def _prepare(self, cond) -> None:
        """Weights as matrices, and each block's condition term (B, 2C), once per call."""
        m = self.model
        down = lambda conv: _Conv(conv, right=False)  # noqa: E731
        right = lambda conv: _Conv(conv, right=True)  # noqa: E731
        self.u_in, self.ul_in_up, self.ul_in_left = down(m.u_in), down(m.ul_in_up), right(m.ul_in_left)
        self.down_u_sample = [down(x) for x in m.down_u_sample]
        self.down_ul_sample = [right(x) for x in m.down_ul_sample]
        self.blocks = {}
        for blocks, is_right in ((m.up_u, False), (m.up_ul, True), (m.down_u, False), (m.down_ul, True)):
            for block in blocks:
                skip = None if block.skip is None else (block.skip.weight[:, :, 0, 0].t(), block.skip.bias)
                cond_term = None if cond is None else block.cond(cond)[:, None, None, :]
                self.blocks[block] = (_Conv(block.conv1, is_right), skip, _Conv(block.conv2, is_right), cond_term)
        self.head = (m.head.weight[:, :, 0, 0].t(), m.head.bias)

    # --- the network on boxes, one buffer per intermediate ----------------------------------------

    def _row_end(self, i: int) -> None:
        """Boxes for the update after row i is complete (i = -1: before any): rows i >> l .. (i + 1) >> l of
        every level l, whole, both streams (rows past the image left out)."""
        H, W = self.x.tensor.shape[1], self.x.tensor.shape[2]
        self.boxes = [(max(i >> l, 0), min(((i + 1) >> l) + 1, H >> l), 0, W >> l) for l in range(self.model.config.stages)]
        self.with_u = True

    def _out(self, level: int, channels: int) -> torch.Tensor:
        """The next intermediate's buffer (B, H_l, W_l, channels), made on the priming forward."""
        if self.n == len(self.buffers):
            x = self.x.tensor
            B, H, W = x.shape[0], x.shape[1] >> level, x.shape[2] >> level
            self.buffers.append(Rows(torch.zeros(B, min(H, RING), W, channels, dtype=x.dtype, device=x.device), H))
        self.n += 1
        return self.buffers[self.n - 1]

    def _active(self, level: int, u: bool) -> bool:
        return self.boxes[level] is not None and (self.with_u or not u)

    def _conv(self, conv: _Conv, t: torch.Tensor, level: int, u: bool, widen: int = 0) -> torch.Tensor:
        """conv on the level's box (`widen` more columns on its left, for a right shift that reads them)."""
        out = self._out(level, conv.weight.shape[1])
        if self._active(level, u):
            r0, r1, c0, c1 = self.boxes[level]
            c0 = max(c0 - widen, 0)
            out.write(r0, c0, c1, conv(t, (r0, r1, c0, c1)))
        return out

    def _deconv(self, deconv, t: torch.Tensor, level: int, u: bool) -> torch.Tensor:
        """x2 upsampling from level + 1: output rows 2k, 2k+1 from row k; the down-right kernel (2, 2) writes
        columns 2c, 2c+1 from c, the down-shifted (2, 3) columns 2c-1 .. 2c+1 (computed on whole rows)."""
        out = self._out(level, deconv.out_channels)
        if not self._active(level, u):
            return out
        r0, r1, c0, c1 = self.boxes[level]
        k0, k1 = r0 >> 1, ((r1 - 1) >> 1) + 1
        if deconv.kernel_size[1] == 2:
            j0, j1 = c0 >> 1, ((c1 - 1) >> 1) + 1
            x = t.rows(k0, k1)[:, :, j0:j1]
            w = deconv.weight.reshape(deconv.in_channels, -1)  # (Cin, Cout*2*2)
            up = (x.reshape(-1, x.shape[-1]) @ w).view(x.shape[0], k1 - k0, j1 - j0, -1, 2, 2)
            up = up.permute(0, 1, 4, 2, 5, 3).reshape(x.shape[0], 2 * (k1 - k0), 2 * (j1 - j0), -1) + deconv.bias
            out.write(2 * k0, 2 * j0, 2 * j1, up)
        else:
            up = F.conv_transpose2d(t.rows(k0, k1).permute(0, 3, 1, 2), deconv.weight, deconv.bias, stride=2)[:, :, :, 1:]
            out.write(2 * k0, 0, out.width, up.permute(0, 2, 3, 1))
        return out

    def _shift(self, t: torch.Tensor, level: int, down: bool, u: bool) -> torch.Tensor:
        out = self._out(level, t.channels)
        if self._active(level, u):
            r0, r1, c0, c1 = self.boxes[level]
            out.write(r0, c0, c1, region(t, r0 - 1, r1 - 1, c0, c1) if down else region(t, r0, r1, c0 - 1, c1 - 1))
        return out

    def _join(self, a: torch.Tensor, b: torch.Tensor, level: int, add: bool) -> torch.Tensor:
        out = self._out(level, a.channels if add else a.channels + b.channels)
        if self._active(level, False):
            r0, r1, c0, c1 = self.boxes[level]
            pa, pb = a.rows(r0, r1)[:, :, c0:c1], b.rows(r0, r1)[:, :, c0:c1]
            out.write(r0, c0, c1, pa + pb if add else torch.cat([pa, pb], dim=-1))
        return out

    def _resnet(self, block, x: torch.Tensor, skip: torch.Tensor | None, level: int, u: bool) -> torch.Tensor:
        """GatedResnet on the box; its inner activation is a buffer too (conv2 reads around it)."""
        conv1, skip_w, conv2, cond_term = self.blocks[block]
        C = x.channels
        inner = self._out(level, 2 * C)
        out = self._out(level, C)
        if not self._active(level, u):
            return out
        r0, r1, c0, c1 = box = self.boxes[level]
        h = conv1(x, box, pre=celu)
        if skip is not None:
            s = skip.rows(r0, r1)[:, :, c0:c1]
            h = h + torch.addmm(skip_w[1], celu(s).reshape(-1, 2 * s.shape[-1]), skip_w[0]).view_as(h)
        inner.write(r0, c0, c1, celu(h))
        g = conv2(inner, box)
        if cond_term is not None:
            g = g + cond_term
        a, b = g.chunk(2, dim=-1)
        out.write(r0, c0, c1, x.rows(r0, r1)[:, :, c0:c1] + a * torch.sigmoid(b))
        return out

    def _forward(self) -> None:
        """model.params, op for op, on the boxes (every op's output kept in its buffer)."""
        m = self.model
        R, S = m.config.resnets, m.config.stages
        self.n = 0
        u = self._shift(self._conv(self.u_in, self.x, 0, True), 0, True, True)
        ul = self._join(self._shift(self._conv(self.ul_in_up, self.x, 0, False), 0, True, False),
                        self._shift(self._conv(self.ul_in_left, self.x, 0, False, widen=1), 0, False, False), 0, add=True)
        us, uls = [u], [ul]
        for s in range(S):
            if s:
                us.append(self._conv(self.down_u_sample[s - 1], us[-1], s, True))
                uls.append(self._conv(self.down_ul_sample[s - 1], uls[-1], s, False))
            for r in range(s * R, (s + 1) * R):
                us.append(self._resnet(m.up_u[r], us[-1], None, s, True))
                uls.append(self._resnet(m.up_ul[r], uls[-1], us[-1], s, False))
        u, ul = us.pop(), uls.pop()
        block = 0
        for s in reversed(range(S)):
            if s < S - 1:
                u = self._deconv(m.up_u_sample[s], u, s, True)
                ul = self._deconv(m.up_ul_sample[s], ul, s, False)
            for _ in range(R if s == S - 1 else R + 1):
                u = self._resnet(m.down_u[block], u, us.pop(), s, True)
                ul = self._resnet(m.down_ul[block], ul, self._join(u, uls.pop(), s, add=False), s, False)
                block += 1
        self.ul = ul

    def _pixel(self) -> torch.Tensor:
        """log p(next pixel) (B, Q) from the final `ul` at that pixel."""
        i, j = divmod(self.t, self.model.config.width)
        w, b = self.head
        return self.model.level_log_probs(torch.addmm(b, F.elu(self.ul.rows(i, i + 1)[:, 0, j]), w))

    # --- the interface ---------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, levels: torch.Tensor) -> torch.Tensor | None:
        m = self.model
        W, N, S = m.config.width, m.sequence_length, m.config.stages
        if self.t >= N:
            raise ValueError("The image is complete: there is no next pixel to feed.")
        i, j = divmod(self.t, W)
        self.x.tensor[:, i, j, 0] = self.centres[levels.long().view(-1).to(self.x.tensor.device)]
        self.t += 1
        if self.t >= N:
            self.log_probs = None
            return None
        if j + 1 == W:  # the row is complete: both streams, whole rows, on every level
            self._row_end(i)
        else:  # `ul` at the next pixel, and at the coarser levels whose current row reads row i
            self.boxes = [(i >> l, (i >> l) + 1, (j + 1) >> l, ((j + 1) >> l) + 1) if i % (1 << l) == 0 else None
                          for l in range(S)]
            self.with_u = False
        self._forward()
        self.log_probs = self._pixel()
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "PixelCNNPlusPlusState":
        self.x = Rows(self.x.tensor.index_select(0, index), self.x.height)
        self.buffers = [Rows(b.tensor.index_select(0, index), b.height) for b in self.buffers]
        self.ul = self.buffers[-1]
        for block, (conv1, skip, conv2, cond_term) in self.blocks.items():
            if cond_term is not None:
                self.blocks[block] = (conv1, skip, conv2, cond_term.index_select(0, index))
        self.log_probs = None if self.log_probs is None else self.log_probs.index_select(0, index)
        return self
