"""Named presets: settings that show one idea in one click (a button on the page, or a `?preset=NAME` link).
Each page's presets map widget keys to values; NOTES say in a sentence what each one shows."""

GALLERY, DRAWING = "A gallery digit", "Your drawing"  # the Complete page's sources
GUESS_MODEL = "wavenet-mnist-q2-hybrid"  # the best Bayes classifier shipped: Guess's default

FOURIER = {
    "n-step wins": {"observe.mode": "Continue the curve", "observe.n": 50, "sampler.horizon": 1000, "sampler.temperature": 0.0},
    "greedy vs sampled": {"sampler.temperature": 0.0, "sampler.trajectories": 5, "layout": "Side by side"},
    "from the prior": {"observe.mode": "Sample from the prior", "sampler.horizon": 600},
    "outside training": {"curve.terms": 5, "curve.bias": 0.6, "curve.trend": 0.02},
}
FOURIER_NOTES = {
    "n-step wins": "See only 50 samples, then forecast 1000 steps greedily: the one-step model drifts, the unrolled one holds.",
    "greedy vs sampled": "Temperature 0: every trajectory is the same most-likely path.",
    "from the prior": "Nothing observed, only the period: each trajectory is a curve the model invents.",
    "outside training": "More terms, a bias and a trend than the models were trained on: watch them fail.",
}

SAMPLE = {
    "greedy": {"sample.temperature": 0.0, "sample.per_digit": 2},
    "hot": {"sample.temperature": 1.5, "sample.per_digit": 2},
    "many 7s": {"sample.digits": [7], "sample.per_digit": 10},
}
SAMPLE_NOTES = {
    "greedy": "Temperature 0: the most likely pixel every time; both samples of a digit are the same, often a plain blob.",
    "hot": "Temperature 1.5: bolder choices, broken strokes and specks.",
    "many 7s": "Ten 7s from one model: how varied its idea of a 7 is.",
}

COMPLETE = {
    "a 7 becoming a 1": {"complete.source": GALLERY, "complete.gallery.digit": 7, "complete.gallery.example": 1,
                         "complete.mask.mode": "Erase a region", "complete.mask.rows": [0, 8], "complete.mask.cols": [0, 27],
                         "complete.digit": 1},
    "1 vs 256 particles": {"complete.source": GALLERY, "complete.gallery.digit": 3, "complete.mask.mode": "Erase a region",
                           "complete.mask.rows": [8, 19], "complete.mask.cols": [0, 27], "complete.n": 4,
                           "complete.particles": 1},
    "draw the top half": {"complete.source": DRAWING, "complete.mask.mode": "Rows below a line", "complete.mask.row": 14},
}
COMPLETE_NOTES = {
    "a 7 becoming a 1": "Hide the top of a 7 and ask for a 1: the model must turn the stroke it sees into a 1.",
    "1 vs 256 particles": "A hole across the middle with one particle: the completions ignore the pixels below "
                          "the hole. Raise the particles to 256 and they join up.",
    "draw the top half": "Draw the top half of a digit above the red region; the model finishes it.",
}

GUESS = {
    "Q=2 hybrid": {"guess.model": GUESS_MODEL},
    "Q=256": {"guess.model": "wavenet-mnist-q256"},
    "a 4 read row by row": {"guess.replay.digit": 4, "guess.replay.example": 1},
}
GUESS_NOTES = {
    "Q=2 hybrid": "The best guesser shipped: binarized pixels, trained to tell digits apart too.",
    "Q=256": "All 256 grey levels: it judges your strokes by how MNIST's grey edges look, too.",
    "a 4 read row by row": "Replay a 4: it looks like a 9 or a 1 for a while, until the lower rows decide.",
}

COMPARE = {
    "blind spot": {"compare.models": ["pixelcnn-mnist-q2", "gated-pixelcnn-mnist-q2"], "compare.dep.row": 14, "compare.dep.col": 14},
    "where WaveNet stops": {"compare.models": ["wavenet-mnist-q2", "made-mnist-q2"], "compare.dep.row": 27, "compare.dep.col": 14},
    "Q=2 vs Q=256": {"compare.models": ["wavenet-mnist-q2", "wavenet-mnist-q256"], "compare.samples": 4},
}
COMPARE_NOTES = {
    "blind spot": "PixelCNN against the Gated PixelCNN: the dependency maps show PixelCNN's blind spot above and to the "
                  "right, and the gated stacks reading whole rows.",
    "where WaveNet stops": "The last row's middle pixel: WaveNet reads a fixed number of pixels back, ending mid-row; MADE "
                           "reads every earlier pixel.",
    "Q=2 vs Q=256": "Ink-or-paper against 256 grey levels: the same seed, different pixels to predict.",
}

PAGES = {"fourier": (FOURIER, FOURIER_NOTES), "sample": (SAMPLE, SAMPLE_NOTES), "complete": (COMPLETE, COMPLETE_NOTES),
         "guess": (GUESS, GUESS_NOTES), "compare": (COMPARE, COMPARE_NOTES)}
URL_PATHS = {"fourier": "", "sample": "mnist_sample", "complete": "mnist_complete", "guess": "mnist_guess", "compare": "compare"}
