"""PixelCNN++'s generation state: the network's forward, kept per call as one buffer per intermediate
tensor, and re-run after each pixel on the rows that pixel can change only (a cache in the spirit of
Ramachandran et al. 2017, adapted to PixelCNN++'s three resolutions).

Why rows: every operation of PixelCNN++ reads only the rows above and its own row, at every resolution
(a 2-row kernel reads rows r-1 and r; a stride-2 convolution's row k reads rows 2k-1 and 2k of the finer
level; an upsampling's rows 2k and 2k+1 read row k of the coarser one), so a row of resolution level l
depends on the image's rows up to 2^l times its index, and nothing above the current pixel's row changes
when the pixel is fed. Feeding pixel (i, j) recomputes, at each level l, the rows floor(i / 2^l) ..
floor(i' / 2^l), i' the next pixel's row: one row per level within an image row (two at its end), and
the `u` stream (strictly the rows above) only when a row is complete. The cost of a pixel is then the
`ul` stream on one row of 28, one of 14 and one of 7 columns, against the whole 28x28, 14x14 and 7x7
images for a full forward: about 1/20 of the work, plus a few hundred small operations of overhead
(bench/fast_states.py measures both). It is exact: a fast state equals the naive state up to float
rounding (tests/test_interface.py, tests/test_pixelcnnpp.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.models.pixelcnnpp import concat_elu


def _rows(t: torch.Tensor, r0: int, r1: int, above: int) -> torch.Tensor:
    """Rows r0-above .. r1-1 of t (B, C, H, W), with zero rows where that starts above the image."""
    start = r0 - above
    part = t[:, :, max(start, 0):r1]
    return F.pad(part, (0, 0, -start, 0)) if start < 0 else part


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
        image, self.cond = model._check(image, cond)
        self.t = T0
        self.centres = model.inputs(torch.arange(c.quantization_levels, device=image.device).view(1, 1, -1))[0, 0, 0, :c.quantization_levels]
        with torch.no_grad():
            self.x = model.inputs(image.view(B, c.height, c.width))  # (B, 2, H', W'): values and ones, padded
            self.buffers = []
            self.bands, self.with_u = None, True  # None: every row of every level (the priming forward)
            self._forward()
            self.log_probs = self._pixel() if T0 < N else None

    # --- the network on a band of rows, one buffer per intermediate ------------------------------

    def _buffer(self, like: torch.Tensor | None, shape=None) -> torch.Tensor:
        """The next intermediate's buffer (made on the priming forward, reused after)."""
        if self.bands is None:
            self.buffers.append(like if like is not None else torch.zeros(shape, dtype=self.x.dtype, device=self.x.device))
        buf = self.buffers[self.n]
        self.n += 1
        return buf

    def _band(self, level: int, t: torch.Tensor) -> tuple[int, int]:
        return (0, t.shape[2]) if self.bands is None else self.bands[level]

    def _conv(self, conv, t: torch.Tensor, level: int, right: bool, stream_u: bool = False, stride: int = 1) -> torch.Tensor:
        """A down-shifted (right=False) or down-right-shifted conv on the band: output row r reads rows r-kh+1 .. r
        (stride 2: output row k at `level` reads rows 2k-1, 2k of level-1)."""
        if self.bands is None:
            return self._buffer(conv(t))
        out = self._buffer(None)
        if stream_u and not self.with_u:
            return out
        kh, kw = conv.kernel_size
        r0, r1 = self.bands[level]
        rows = _rows(t, stride * r0, stride * r1 - (stride - 1), kh - 1) if stride == 2 else _rows(t, r0, r1, kh - 1)
        pad = (kw - 1, 0) if right else ((kw - 1) // 2, (kw - 1) // 2)
        out[:, :, r0:r1] = F.conv2d(F.pad(rows, pad), conv.weight, conv.bias, stride=stride)
        return out

    def _deconv(self, deconv, t: torch.Tensor, level: int, stream_u: bool) -> torch.Tensor:
        """x2 upsampling from `level` + 1 to `level`: rows 2k, 2k+1 from row k."""
        if self.bands is None:
            return self._buffer(deconv(t))
        out = self._buffer(None)
        if stream_u and not self.with_u:
            return out
        k0, k1 = self.bands[level + 1]
        up = F.conv_transpose2d(t[:, :, k0:k1], deconv.weight, deconv.bias, stride=2)
        if deconv.kernel_size[1] == 3:
            up = up[:, :, :, 1:]
        out[:, :, 2 * k0:2 * k1] = up
        return out

    def _shift(self, t: torch.Tensor, level: int, down: bool, stream_u: bool) -> torch.Tensor:
        if self.bands is None:
            return self._buffer(F.pad(t, (0, 0, 1, 0))[:, :, :-1] if down else F.pad(t, (1, 0))[:, :, :, :-1])
        out = self._buffer(None)
        if stream_u and not self.with_u:
            return out
        r0, r1 = self.bands[level]
        out[:, :, r0:r1] = _rows(t, r0, r1 - 1, 1) if down else F.pad(t[:, :, r0:r1], (1, 0))[:, :, :, :-1]
        return out

    def _sum(self, a: torch.Tensor, b: torch.Tensor, level: int) -> torch.Tensor:
        if self.bands is None:
            return self._buffer(a + b)
        out = self._buffer(None)
        r0, r1 = self.bands[level]
        torch.add(a[:, :, r0:r1], b[:, :, r0:r1], out=out[:, :, r0:r1])
        return out

    def _resnet(self, block, x: torch.Tensor, skip: torch.Tensor | None, level: int, stream_u: bool) -> torch.Tensor:
        """GatedResnet on the band; its inner activation is a buffer too (conv2 reads its row above)."""
        right = not stream_u
        if self.bands is None:
            inner = block.conv1(concat_elu(x))
            if skip is not None:
                inner = inner + block.skip(concat_elu(skip))
            inner = self._buffer(concat_elu(inner))
        else:
            inner = self._buffer(None)
            if not stream_u or self.with_u:
                r0, r1 = self.bands[level]
                kh, kw = block.conv1.kernel_size
                pad = (kw - 1, 0) if right else ((kw - 1) // 2, (kw - 1) // 2)
                c1 = F.conv2d(F.pad(concat_elu(_rows(x, r0, r1, kh - 1)), pad), block.conv1.weight, block.conv1.bias)
                if skip is not None:
                    c1 = c1 + block.skip(concat_elu(skip[:, :, r0:r1]))
                inner[:, :, r0:r1] = concat_elu(c1)
        c2 = self._conv(block.conv2, inner, level, right, stream_u)
        if self.bands is None:
            c2 = c2.clone()
            if self.cond is not None:
                c2 += block.cond(self.cond)[:, :, None, None]
            a, b = c2.chunk(2, dim=1)
            return self._buffer(x + a * torch.sigmoid(b))
        out = self._buffer(None)
        if not stream_u or self.with_u:
            r0, r1 = self.bands[level]
            h = c2[:, :, r0:r1]
            if self.cond is not None:
                h = h + block.cond(self.cond)[:, :, None, None]
            a, b = h.chunk(2, dim=1)
            out[:, :, r0:r1] = x[:, :, r0:r1] + a * torch.sigmoid(b)
        return out

    def _forward(self) -> None:
        """model.params, op for op, on the bands (every op's output kept in its buffer)."""
        m = self.model
        R, S = m.config.resnets, m.config.stages
        self.n = 0
        u = self._shift(self._conv(m.u_in, self.x, 0, False, True), 0, True, True)
        ul = self._sum(self._shift(self._conv(m.ul_in_up, self.x, 0, False), 0, True, False),
                       self._shift(self._conv(m.ul_in_left, self.x, 0, True), 0, False, False), 0)
        us, uls = [u], [ul]
        for s in range(S):
            if s:
                us.append(self._conv(m.down_u_sample[s - 1], us[-1], s, False, True, stride=2))
                uls.append(self._conv(m.down_ul_sample[s - 1], uls[-1], s, True, False, stride=2))
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
                ul = self._resnet(m.down_ul[block], ul, self._cat(u, uls.pop(), s), s, False)
                block += 1
        self.ul = ul

    def _cat(self, a: torch.Tensor, b: torch.Tensor, level: int) -> torch.Tensor:
        if self.bands is None:
            return self._buffer(torch.cat([a, b], dim=1))
        out = self._buffer(None)
        r0, r1 = self.bands[level]
        out[:, :, r0:r1] = torch.cat([a[:, :, r0:r1], b[:, :, r0:r1]], dim=1)
        return out

    def _pixel(self) -> torch.Tensor:
        """log p(next pixel) (B, Q) from the final `ul` at that pixel."""
        m = self.model
        i, j = divmod(self.t, m.config.width)
        params = F.linear(F.elu(self.ul[:, :, i, j]), m.head.weight[:, :, 0, 0], m.head.bias)
        return m.level_log_probs(params)

    # --- the interface ---------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, levels: torch.Tensor) -> torch.Tensor | None:
        m = self.model
        W, N = m.config.width, m.sequence_length
        if self.t >= N:
            raise ValueError("The image is complete: there is no next pixel to feed.")
        i, j = divmod(self.t, W)
        self.x[:, 0, i, j] = self.centres[levels.long().view(-1).to(self.x.device)]
        self.t += 1
        if self.t >= N:
            self.log_probs = None
            return None
        nxt = self.t // W
        self.bands = [(i >> l, (nxt >> l) + 1) for l in range(m.config.stages)]
        self.with_u = nxt != i  # the u stream reads only the rows above: it changes when a row is complete
        self._forward()
        self.log_probs = self._pixel()
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "PixelCNNPlusPlusState":
        self.x = self.x.index_select(0, index)
        self.buffers = [b.index_select(0, index) for b in self.buffers]
        self.ul = self.buffers[-1]
        if self.cond is not None:
            self.cond = self.cond.index_select(0, index)
        self.log_probs = None if self.log_probs is None else self.log_probs.index_select(0, index)
        return self
