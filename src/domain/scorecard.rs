//! Summarising many verdicts into one: the rules an operator may choose for a scorecard's
//! overall rating.

use super::rating::Rating;

/// How a scorecard derives an overall rating from its commitments' current ratings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScorecardRule {
    /// No overall rating: the counts speak for themselves.
    #[default]
    None,
    /// The worst current rating (a chain is as strong as its weakest link).
    Worst,
    /// The median current rating, rounding towards the worse on a tie.
    Median,
}

impl ScorecardRule {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ScorecardRule::None => "none",
            ScorecardRule::Worst => "worst",
            ScorecardRule::Median => "median",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(ScorecardRule::None),
            "worst" => Some(ScorecardRule::Worst),
            "median" => Some(ScorecardRule::Median),
            _ => None,
        }
    }

    /// The overall rating of `ratings` (unrated commitments are left out), if any.
    pub fn overall(self, ratings: &[Rating]) -> Option<Rating> {
        let mut sorted: Vec<Rating> = ratings.to_vec();
        // Worst first.
        sorted.sort_by_key(|r| r.rank());
        match self {
            ScorecardRule::None => None,
            ScorecardRule::Worst => sorted.first().copied(),
            ScorecardRule::Median if sorted.is_empty() => None,
            ScorecardRule::Median => Some(sorted[(sorted.len() - 1) / 2]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Rating::*;

    #[test]
    fn the_panels_mix_is_inadequate_at_worst_and_requires_improvement_at_the_median() {
        let ratings = [
            RequiresImprovement,
            RequiresImprovement,
            Inadequate,
            RequiresImprovement,
            Inadequate,
            Inadequate,
            Inadequate,
        ];
        assert_eq!(ScorecardRule::Worst.overall(&ratings), Some(Inadequate));
        assert_eq!(ScorecardRule::Median.overall(&ratings), Some(Inadequate));
        assert_eq!(
            ScorecardRule::Median.overall(&ratings[..5]),
            Some(RequiresImprovement)
        );
        assert_eq!(ScorecardRule::None.overall(&ratings), None);
        assert_eq!(ScorecardRule::Median.overall(&[]), None);
        assert_eq!(
            ScorecardRule::Median.overall(&[Good, Inadequate]),
            Some(Inadequate)
        );
    }
}
