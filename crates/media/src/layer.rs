//! Simulcast layer choice: which of a publisher's encodings each subscriber receives.
//!
//! A browser that publishes simulcast sends the same video as up to three encodings (RIDs) of
//! different resolution and bitrate. For every subscription the choice is made in two steps:
//! 1. By size: the smallest layer that fills the tile the subscriber shows the video in (the
//!    client reports tile sizes) without upscaling it much. Screen share always wants the
//!    largest layer: text must stay legible, and a shared screen moves little.
//! 2. By bandwidth: the subscriber's estimated downlink (str0m's TWCC estimator) is shared by
//!    all video it receives; while the wanted layers do not fit, the largest camera layer steps
//!    down, then screen share. The lowest layer is never taken away: a frozen picture is worse
//!    than a blurry one.
//!
//! Hysteresis keeps the choice from flapping when the estimate hovers around a layer's
//! bitrate: a subscription moves up only if the result still fits with [`UPGRADE_MARGIN`] to
//! spare, and moves down only when the current layers no longer fit at all. The caller adds time
//! to both: no upgrade soon after a downgrade, no downgrade before the estimate stayed too low for
//! a while (a delay-based estimate dips on a short burst or a busy receiver).
//!
//! The functions here are pure; `sfu::forwarding` keeps the layer statistics and performs the
//! switch at a keyframe of the new layer.

/// A layer may be shown this much larger than its resolution before a larger one is wanted.
pub const MAX_UPSCALE: f64 = 1.3;

/// Moving up needs the estimate to exceed the new total by this factor.
pub const UPGRADE_MARGIN: f64 = 1.15;

/// One active layer of a track, as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerInfo {
    /// Resolution from the layer's last keyframe; 0 when the codec does not tell (cheaply).
    pub width: u32,
    pub height: u32,
    /// Received bitrate in bits per second.
    pub bitrate: u64,
}

/// The size, in device pixels, at which a subscriber shows a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub width: u32,
    pub height: u32,
}

/// Orders layers from lowest to highest quality: by resolution where known, then by bitrate
/// (browsers list encodings in any order and name them freely, so RIDs say nothing).
/// Returns indices into `layers`.
pub fn rank(layers: &[LayerInfo]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by_key(|&i| {
        let l = &layers[i];
        (u64::from(l.width) * u64::from(l.height), l.bitrate)
    });
    order
}

/// The resolution to assume for the layer at `position` of `count` ranked layers when the codec
/// does not reveal it: 1280x720 on top, halved per step down (what browsers send by default).
fn assumed(position: usize, count: usize) -> (u32, u32) {
    let down = (count - 1 - position).min(8) as u32;
    (1280 >> down, 720 >> down)
}

/// The position (in `ranked`, lowest first) of the smallest layer that shows at `tile` without
/// being upscaled by more than [`MAX_UPSCALE`]; the top layer if none does, or if the size is
/// unknown. A zero-sized tile (hidden) gets the lowest layer.
pub fn for_size(ranked: &[LayerInfo], tile: Option<Tile>) -> usize {
    let top = ranked.len().saturating_sub(1);
    let Some(tile) = tile else {
        return top;
    };
    if tile.width == 0 || tile.height == 0 {
        return 0;
    }
    for (position, l) in ranked.iter().enumerate() {
        let (w, h) = if l.width > 0 && l.height > 0 {
            (l.width, l.height)
        } else {
            assumed(position, ranked.len())
        };
        // Shown with its aspect kept ("contain"): the scale that fits the tile.
        let scale =
            (f64::from(tile.width) / f64::from(w)).min(f64::from(tile.height) / f64::from(h));
        if scale <= MAX_UPSCALE {
            return position;
        }
    }
    top
}

/// One video subscription of a subscriber, for fitting to its bandwidth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// Bitrates of the track's layers, lowest first.
    pub ladder: Vec<u64>,
    /// Position chosen by size (for screen share: the top).
    pub wanted: usize,
    /// Position forwarded now, if any.
    pub current: Option<usize>,
    pub screen: bool,
}

/// What `positions` of `wants` cost together, bits per second.
pub fn cost(wants: &[Want], positions: &[usize]) -> u64 {
    wants
        .iter()
        .zip(positions)
        .map(|(w, &p)| w.ladder.get(p).copied().unwrap_or(0))
        .sum()
}

/// Fits the wanted positions into `budget` bits per second: steps down the subscription whose
/// current layer costs most, cameras before screen shares, never below the lowest layer.
pub fn fit(wants: &[Want], budget: u64) -> Vec<usize> {
    let mut chosen: Vec<usize> = wants
        .iter()
        .map(|w| w.wanted.min(w.ladder.len().saturating_sub(1)))
        .collect();
    while cost(wants, &chosen) > budget {
        let victim = (0..wants.len())
            .filter(|&i| chosen[i] > 0)
            .max_by_key(|&i| (!wants[i].screen, wants[i].ladder[chosen[i]]));
        match victim {
            Some(i) => chosen[i] -= 1,
            None => break,
        }
    }
    chosen
}

/// The positions to forward next, with hysteresis: down to what fits `budget` when the current
/// choice does not fit and `may_downgrade`, up only to what fits with [`UPGRADE_MARGIN`] to spare
/// and only when `may_upgrade`, one layer at a time. Size changes downwards apply at once.
pub fn choose(wants: &[Want], budget: u64, may_upgrade: bool, may_downgrade: bool) -> Vec<usize> {
    let fits = fit(wants, budget);
    let fits_with_margin = fit(wants, (budget as f64 / UPGRADE_MARGIN) as u64);
    wants
        .iter()
        .enumerate()
        .map(|(i, w)| match w.current {
            None => fits[i],
            // Size says lower: follow at once.
            Some(c) if c > w.wanted => fits[i].min(w.wanted),
            // Bandwidth says lower.
            Some(c) if c > fits[i] && may_downgrade => fits[i],
            // One step at a time: the estimate after a short probe can be far above what the
            // link sustains (a policer lets a burst through).
            Some(c) if may_upgrade && c < fits_with_margin[i] && c <= fits[i] => c + 1,
            Some(c) => c.min(w.ladder.len().saturating_sub(1)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(width: u32, height: u32, bitrate: u64) -> LayerInfo {
        LayerInfo {
            width,
            height,
            bitrate,
        }
    }

    fn ladder() -> Vec<LayerInfo> {
        vec![
            layer(320, 180, 150_000),
            layer(640, 360, 500_000),
            layer(1280, 720, 1_500_000),
        ]
    }

    fn tile(width: u32, height: u32) -> Option<Tile> {
        Some(Tile { width, height })
    }

    #[test]
    fn rank_orders_by_resolution_not_by_listing() {
        let layers = vec![
            layer(1280, 720, 1_500_000),
            layer(320, 180, 150_000),
            layer(640, 360, 500_000),
        ];
        assert_eq!(rank(&layers), vec![1, 2, 0]);
        // Without resolutions (a codec that does not reveal them), bitrate decides.
        let blind = vec![layer(0, 0, 900), layer(0, 0, 100), layer(0, 0, 300)];
        assert_eq!(rank(&blind), vec![1, 2, 0]);
    }

    #[test]
    fn size_picks_smallest_layer_that_fills_the_tile() {
        let l = ladder();
        assert_eq!(for_size(&l, tile(200, 112)), 0);
        assert_eq!(for_size(&l, tile(320, 180)), 0);
        // 416 px is 1.3 times 320: still the low layer; a bit more needs the middle one.
        assert_eq!(for_size(&l, tile(416, 234)), 0);
        assert_eq!(for_size(&l, tile(480, 270)), 1);
        assert_eq!(for_size(&l, tile(832, 468)), 1);
        assert_eq!(for_size(&l, tile(1000, 562)), 2);
        assert_eq!(for_size(&l, tile(3840, 2160)), 2);
        // A tall narrow tile shows a 16:9 video by its width.
        assert_eq!(for_size(&l, tile(300, 1000)), 0);
        // Unknown size: the best; hidden: the least.
        assert_eq!(for_size(&l, None), 2);
        assert_eq!(for_size(&l, tile(0, 0)), 0);
        assert_eq!(for_size(&[], tile(100, 100)), 0);
    }

    #[test]
    fn size_without_known_resolutions_assumes_halving_from_720p() {
        let blind = vec![layer(0, 0, 100), layer(0, 0, 300), layer(0, 0, 900)];
        assert_eq!(for_size(&blind, tile(320, 180)), 0);
        assert_eq!(for_size(&blind, tile(640, 360)), 1);
        assert_eq!(for_size(&blind, tile(1280, 720)), 2);
        // A single unknown layer is the only choice.
        assert_eq!(for_size(&blind[..1], tile(1280, 720)), 0);
    }

    fn want(wanted: usize, current: Option<usize>, screen: bool) -> Want {
        Want {
            ladder: vec![150_000, 500_000, 1_500_000],
            wanted,
            current,
            screen,
        }
    }

    #[test]
    fn fit_steps_down_the_costliest_camera_first_and_keeps_the_lowest() {
        let wants = vec![want(2, None, false), want(2, None, false)];
        assert_eq!(fit(&wants, 10_000_000), vec![2, 2]);
        assert_eq!(fit(&wants, 2_000_000), vec![2, 1]);
        assert_eq!(fit(&wants, 1_000_000), vec![1, 1]);
        assert_eq!(fit(&wants, 650_000), vec![1, 0]);
        // Even with no bandwidth at all, everyone keeps the lowest layer.
        assert_eq!(fit(&wants, 0), vec![0, 0]);
        // Screen share keeps its resolution while cameras give way.
        let with_screen = vec![want(2, None, true), want(2, None, false)];
        assert_eq!(fit(&with_screen, 1_700_000), vec![2, 0]);
        assert_eq!(fit(&with_screen, 1_000_000), vec![1, 0]);
        // Never above the wanted layer, whatever the budget.
        assert_eq!(fit(&[want(0, None, false)], u64::MAX), vec![0]);
    }

    #[test]
    fn choose_has_hysteresis_around_a_layer_bitrate() {
        // Forwarding the top layer at 1.5 Mbit/s: an estimate a little above keeps it...
        let on_top = vec![want(2, Some(2), false)];
        assert_eq!(choose(&on_top, 1_550_000, true, true), vec![2]);
        // ...one below drops it, once the caller lets it.
        assert_eq!(choose(&on_top, 1_400_000, true, true), vec![1]);
        assert_eq!(choose(&on_top, 1_400_000, true, false), vec![2]);
        // On the middle layer, an estimate just above the top layer's bitrate is not enough to
        // move up; a margin above is.
        let middle = vec![want(2, Some(1), false)];
        assert_eq!(choose(&middle, 1_550_000, true, true), vec![1]);
        assert_eq!(choose(&middle, 1_800_000, true, true), vec![2]);
        // From the bottom, one step per decision.
        assert_eq!(
            choose(&[want(2, Some(0), false)], 10_000_000, true, true),
            vec![1]
        );
        // Upgrades can be held back.
        assert_eq!(choose(&middle, 1_800_000, false, true), vec![1]);
        // A smaller tile lowers the layer at once, whatever the bandwidth.
        assert_eq!(
            choose(&[want(0, Some(2), false)], u64::MAX, false, false),
            vec![0]
        );
        // A new subscription starts at what fits.
        assert_eq!(
            choose(&[want(2, None, false)], 1_000_000, true, false),
            vec![1]
        );
        // Two cameras: while a downgrade is held back, nobody moves up into the other's share.
        let two = vec![want(2, Some(2), false), want(2, Some(1), false)];
        assert_eq!(choose(&two, 1_900_000, true, false), vec![2, 1]);
        assert_eq!(cost(&two, &[2, 1]), 2_000_000);
    }

    #[test]
    fn choose_survives_a_shrunk_ladder() {
        // The current position may point past a ladder that lost its top layer.
        let w = Want {
            ladder: vec![150_000],
            wanted: 0,
            current: Some(2),
            screen: false,
        };
        assert_eq!(choose(&[w], 10_000_000, true, true), vec![0]);
    }
}
