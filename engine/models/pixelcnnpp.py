"""PixelCNN++ (Salimans, Karpathy, Chen and Kingma 2017, "PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications"): two streams of shifted convolutions
without masks (`u` reads the rows above a pixel, `ul` the rows above and the pixels to its left, so no
blind spot), gated ResNet blocks with concat_elu, two stride-2 downsamplings and the matching
upsamplings with shortcut connections between the passes, the class condition added in every block,
and a discretized logistic mixture over the Q levels per pixel (engine/models/logistic_mixture.py)
instead of a Q-way softmax. One grey channel, so the paper's coupling of R, G and B is not needed.

Every operation reads only rows above (and, in `ul`, the same row's columns to the left), at every
resolution, so the output at row i is final once the pixels of row i are known; the generation state
(engine/models/pixelcnnpp_state.py) uses that.

Q=2: the family works at any Q >= 2 (the tests use Q=2 and Q=5), but no Q=2 model is shipped. With two
levels the mixture has one bin edge (at 0) and no interior bin, so it is a Bernoulli whose probability is
sum_m w_m sigma(mean_m / s_m): 3M numbers per pixel for one probability that a 2-way softmax gives with
one logit, and no shape for the mixture to model. A Q=2 PixelCNN++ would be this network with a
softmax head, which is what the Gated PixelCNN already shows at Q=2."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.base import AutoregressiveModel, check_image_inputs
from engine.models.logistic_mixture import bin_centres, level_log_probs, observed_log_probs


@dataclass
class PixelCNNPlusPlusConfig:
    quantization_levels: int = 256  # Q
    cond_channels: int = 0  # K; 0 = unconditional
    height: int = 28
    width: int = 28
    filters: int = 32  # C, the width of both streams (the paper: 160)
    resnets: int = 1  # gated ResNet blocks per stage and pass (the paper's nr_resnet: 5)
    stages: int = 3  # resolutions: 1, 1/2, 1/4 of the image (the paper: 3); H and W are padded to a multiple of 2^(stages-1)
    components: int = 5  # M, logistic mixture components (the paper: 10)

    def __post_init__(self):
        ints = {"quantization_levels": 2, "cond_channels": 0, "height": 1, "width": 1, "filters": 1, "resnets": 0,
                "stages": 1, "components": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"PixelCNNPlusPlusConfig.{name} must be an integer >= {low}, got {value!r}.")


def concat_elu(x: torch.Tensor) -> torch.Tensor:
    """(B, C, ...) -> elu of [x, -x] (B, 2C, ...): both signs pass, the paper's resnet nonlinearity."""
    return F.elu(torch.cat([x, -x], dim=1))


def down_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 0))[:, :, :, :-1]


class DownShiftedConv2d(nn.Conv2d):
    """Output (i, j) reads input rows i-kh+1 .. i, columns j-kw//2 .. j+kw//2 (stride s: rows s*i-kh+1 .. s*i)."""

    def __init__(self, cin: int, cout: int, kernel=(2, 3), stride: int = 1):
        super().__init__(cin, cout, kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        return super().forward(F.pad(x, ((kw - 1) // 2, (kw - 1) // 2, kh - 1, 0)))


class DownRightShiftedConv2d(nn.Conv2d):
    """Output (i, j) reads input rows i-kh+1 .. i, columns j-kw+1 .. j."""

    def __init__(self, cin: int, cout: int, kernel=(2, 2), stride: int = 1):
        super().__init__(cin, cout, kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        return super().forward(F.pad(x, (kw - 1, 0, kh - 1, 0)))


class DownShiftedDeconv2d(nn.ConvTranspose2d):
    """x2 upsampling: input (i, j) writes output rows 2i, 2i+1 and columns 2j-1 .. 2j+1."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, (2, 3), stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, :, :, 1:]


class DownRightShiftedDeconv2d(nn.ConvTranspose2d):
    """x2 upsampling: input (i, j) writes output rows 2i, 2i+1 and columns 2j, 2j+1."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, (2, 2), stride=2)


class GatedResnet(nn.Module):
    """x + a * sigmoid(b), where [a, b] = conv(concat_elu(conv(concat_elu(x)) + nin(concat_elu(skip)))) +
    the condition: the paper's gated_resnet (without dropout and weight normalization)."""

    def __init__(self, filters: int, conv: type, skip_filters: int, cond_channels: int):
        super().__init__()
        C = filters
        self.conv1 = conv(2 * C, C)
        self.skip = nn.Conv2d(2 * skip_filters, C, 1) if skip_filters else None
        self.conv2 = conv(2 * C, 2 * C)
        self.cond = nn.Linear(cond_channels, 2 * C, bias=False) if cond_channels else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, cond: torch.Tensor | None) -> torch.Tensor:
        c = self.conv1(concat_elu(x))
        if skip is not None:
            c = c + self.skip(concat_elu(skip))
        c = self.conv2(concat_elu(c))
        if cond is not None:
            c = c + self.cond(cond)[:, :, None, None]
        a, b = c.chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class PixelCNNPlusPlus(AutoregressiveModel):
    family_name = "PixelCNN++"
    family_summary = ("shifted convolutions in two streams with gated ResNet blocks, down- and upsampling with "
                      "shortcuts, and a discretized logistic mixture instead of a Q-way softmax")
    family_paper = "Salimans et al. 2017"

    def __init__(self, config: PixelCNNPlusPlusConfig):
        super().__init__()
        self.config = c = config
        C, K, R, S = c.filters, c.cond_channels, c.resnets, c.stages
        # inputs: the level's value in [-1, 1] and a channel of ones (the paper's way to tell the image from padding)
        self.u_in = DownShiftedConv2d(2, C, (2, 3))
        self.ul_in_up = DownShiftedConv2d(2, C, (1, 3))
        self.ul_in_left = DownRightShiftedConv2d(2, C, (2, 1))
        self.up_u = nn.ModuleList(GatedResnet(C, DownShiftedConv2d, 0, K) for _ in range(S * R))
        self.up_ul = nn.ModuleList(GatedResnet(C, DownRightShiftedConv2d, C, K) for _ in range(S * R))
        self.down_u_sample = nn.ModuleList(DownShiftedConv2d(C, C, (2, 3), stride=2) for _ in range(S - 1))
        self.down_ul_sample = nn.ModuleList(DownRightShiftedConv2d(C, C, (2, 2), stride=2) for _ in range(S - 1))
        down = R + (S - 1) * (R + 1)  # blocks of the second pass: R at the lowest resolution, R + 1 at the others
        self.down_u = nn.ModuleList(GatedResnet(C, DownShiftedConv2d, C, K) for _ in range(down))
        self.down_ul = nn.ModuleList(GatedResnet(C, DownRightShiftedConv2d, 2 * C, K) for _ in range(down))
        self.up_u_sample = nn.ModuleList(DownShiftedDeconv2d(C, C) for _ in range(S - 1))
        self.up_ul_sample = nn.ModuleList(DownRightShiftedDeconv2d(C, C) for _ in range(S - 1))
        self.head = nn.Conv2d(C, 3 * c.components, 1)

    @property
    def sequence_length(self) -> int:
        return self.config.height * self.config.width

    def architecture_note(self) -> str:
        c = self.config
        # the `ul` stream's reach to the left in a pixel's own row at full resolution: the right shift, the
        # first pass's R blocks (2 convs each), the skip into the first second-pass block's conv2, R more blocks
        row = 2 + 4 * c.resnets
        return (f"{c.filters} filters, {c.resnets} gated ResNet block(s) per stage and pass at {c.stages} resolutions, "
                f"a mixture of {c.components} discretized logistics per pixel; no blind spot: a pixel reads the rows above, "
                f"also above and to its right, and in its own row the {row} pixels to its left (more on the rows the "
                f"coarser resolutions begin on)")

    def _check(self, levels: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return check_image_inputs(self.config, levels, cond, self.head.weight.dtype)

    def inputs(self, image: torch.Tensor) -> torch.Tensor:
        """Level images (B, H', W') -> (B, 2, H'', W''): the values in [-1, 1] and ones, padded right and
        below with zeros (no pixel) to a multiple of 2^(stages-1); the padding is after every pixel it touches."""
        c = self.config
        values = bin_centres(c.quantization_levels, self.head.weight.dtype, image.device)[image]
        x = torch.stack([values, torch.ones_like(values)], dim=1)
        m = 2 ** (c.stages - 1)
        return F.pad(x, (0, -image.shape[2] % m, 0, -image.shape[1] % m))

    def first_streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs (B, 2, H, W) -> u (strictly the rows above) and ul (also the pixels to the left), (B, C, H, W)."""
        return down_shift(self.u_in(x)), down_shift(self.ul_in_up(x)) + right_shift(self.ul_in_left(x))

    def params(self, image: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Level images (B, H', W') and a checked condition -> mixture parameters (B, 3M, H', W')."""
        c = self.config
        R, S = c.resnets, c.stages
        u, ul = self.first_streams(self.inputs(image))
        us, uls = [u], [ul]
        for s in range(S):
            if s:
                us.append(self.down_u_sample[s - 1](us[-1]))
                uls.append(self.down_ul_sample[s - 1](uls[-1]))
            for r in range(s * R, (s + 1) * R):
                us.append(self.up_u[r](us[-1], None, cond))
                uls.append(self.up_ul[r](uls[-1], us[-1], cond))
        u, ul = us.pop(), uls.pop()
        block = 0
        for s in reversed(range(S)):
            if s < S - 1:
                u, ul = self.up_u_sample[s](u), self.up_ul_sample[s](ul)
            for _ in range(R if s == S - 1 else R + 1):
                u = self.down_u[block](u, us.pop(), cond)
                ul = self.down_ul[block](ul, torch.cat([u, uls.pop()], dim=1), cond)
                block += 1
        return self.head(F.elu(ul))[:, :, :image.shape[1], :image.shape[2]]

    def level_log_probs(self, params: torch.Tensor) -> torch.Tensor:
        """Mixture parameters (..., 3M) -> log p(level) (..., Q)."""
        return level_log_probs(params, self.config.quantization_levels, self.config.components)

    def _pixel_params(self, levels: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """levels (B, N), cond -> (checked levels, mixture parameters (B, N, 3M) in raster order)."""
        levels, cond = self._check(levels, cond)
        c = self.config
        params = self.params(levels.view(-1, c.height, c.width), cond)
        return levels, params.permute(0, 2, 3, 1).reshape(levels.shape[0], -1, 3 * c.components)

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N) in raster order, cond (B, K) -> (B, N, Q): row t = log p(x_t | x_<t, y)."""
        return self.level_log_probs(self._pixel_params(levels, cond)[1])

    def log_likelihood(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N), cond (B, K) -> (B, N) log p(x_t | x_<t, y) of the observed levels only: the training
        loss scores one bin per pixel, not all Q (at Q=256 that is most of a training step saved)."""
        levels, params = self._pixel_params(levels, cond)
        return observed_log_probs(params, levels.long(), self.config.quantization_levels, self.config.components)

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None):
        """A per-call state that re-runs the network on the rows the last pixel can change only."""
        from engine.models.pixelcnnpp_state import PixelCNNPlusPlusState  # it imports this module

        return PixelCNNPlusPlusState(self, prefix, cond)
