//! The Expert Panel's rating scale, delivery statuses and kinds of assessor and evidence.

use serde::{Deserialize, Serialize};

/// Generates `as_str` / `parse` for a fieldless enum stored as text in projections.
macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// The stored spelling, equal to the serde and GraphQL spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
            /// Parses the stored spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($ty::$variant),)+ _ => None }
            }
            /// The spelling for people: `REQUIRES_IMPROVEMENT` is "Requires improvement".
            pub fn label(self) -> String {
                words(self.as_str())
            }
        }
    };
}

/// An enum name in words, as people write it: `NOT_ON_TRACK` is "Not on track".
pub fn words(name: &str) -> String {
    let lower = name.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A grade on the four-point scale, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rating {
    /// Fully met, fully funded, positive impact, appropriate.
    Outstanding,
    /// Met with minor gaps; effective funding; mostly positive impact.
    Good,
    /// Not met; substantive extra steps needed.
    RequiresImprovement,
    /// Not met; very significant extra steps needed.
    Inadequate,
}
text_enum!(Rating { Outstanding => "OUTSTANDING", Good => "GOOD", RequiresImprovement => "REQUIRES_IMPROVEMENT", Inadequate => "INADEQUATE" });

impl Rating {
    /// 4 for Outstanding down to 1 for Inadequate, as in the Panel's anchor statements.
    pub fn rank(self) -> u8 {
        match self {
            Rating::Outstanding => 4,
            Rating::Good => 3,
            Rating::RequiresImprovement => 2,
            Rating::Inadequate => 1,
        }
    }
}

/// How far a commitment has been delivered, as the assessor judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// Delivered.
    Met,
    /// Part delivered (for instance an interim milestone).
    PartiallyMet,
    /// Not yet due and expected to be met.
    OnTrack,
    /// Not yet due and not expected to be met as things stand.
    NotOnTrack,
    /// Due and not delivered.
    NotMet,
    /// The assessor gave no view on delivery.
    NotAssessed,
}
text_enum!(DeliveryStatus { Met => "MET", PartiallyMet => "PARTIALLY_MET", OnTrack => "ON_TRACK", NotOnTrack => "NOT_ON_TRACK", NotMet => "NOT_MET", NotAssessed => "NOT_ASSESSED" });

/// What kind of body gave a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssessorKind {
    /// An independent body: an expert panel, an academic evaluator, an auditor.
    Independent,
    /// The government or one of its bodies assessing its own delivery.
    Government,
    /// Anyone else.
    Other,
}
text_enum!(AssessorKind { Independent => "INDEPENDENT", Government => "GOVERNMENT", Other => "OTHER" });

/// What kind of submission a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EvidenceKind {
    /// Written evidence to a committee or panel.
    WrittenEvidence,
    /// Figures or a data release.
    Data,
    /// An evaluation report.
    Evaluation,
    /// A formal government response or statement.
    GovernmentResponse,
    /// An answer to a parliamentary question.
    ParliamentaryAnswer,
    /// A public announcement.
    Announcement,
    /// A report in the press or trade press.
    PressReport,
    /// Anything else.
    Other,
}
text_enum!(EvidenceKind { WrittenEvidence => "WRITTEN_EVIDENCE", Data => "DATA", Evaluation => "EVALUATION", GovernmentResponse => "GOVERNMENT_RESPONSE", ParliamentaryAnswer => "PARLIAMENTARY_ANSWER", Announcement => "ANNOUNCEMENT", PressReport => "PRESS_REPORT", Other => "OTHER" });

/// The four aspects the Panel rates; any may be absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aspects {
    /// Met or on track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met: Option<Rating>,
    /// Funding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<Rating>,
    /// Impact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Rating>,
    /// Appropriateness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appropriateness: Option<Rating>,
}

/// How a verdict moved against the one it replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The first verdict on the commitment.
    First,
    /// A better overall rating than before.
    Improved,
    /// A worse overall rating than before.
    Declined,
    /// The same overall rating, or no overall rating on either side.
    Unchanged,
    /// An overall rating where the verdict it replaced gave none.
    Rated,
    /// No overall rating where the verdict it replaced gave one.
    Unrated,
}

impl Direction {
    /// Compares an overall rating with the one it replaced (`None` previous = no earlier verdict).
    pub fn between(previous: Option<Option<Rating>>, current: Option<Rating>) -> Self {
        match previous {
            None => Direction::First,
            Some(prev) => match (prev.map(Rating::rank), current.map(Rating::rank)) {
                (Some(a), Some(b)) if b > a => Direction::Improved,
                (Some(a), Some(b)) if b < a => Direction::Declined,
                (Some(_), Some(_)) | (None, None) => Direction::Unchanged,
                (None, Some(_)) => Direction::Rated,
                (Some(_), None) => Direction::Unrated,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enum_round_trips_through_its_stored_spelling() {
        for r in Rating::ALL {
            assert_eq!(Rating::parse(r.as_str()), Some(*r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for k in EvidenceKind::ALL {
            assert_eq!(EvidenceKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(AssessorKind::parse("SELF"), None);
    }

    #[test]
    fn labels_are_the_panels_words() {
        assert_eq!(Rating::RequiresImprovement.label(), "Requires improvement");
        assert_eq!(Rating::Inadequate.label(), "Inadequate");
        assert_eq!(DeliveryStatus::NotOnTrack.label(), "Not on track");
    }

    #[test]
    fn direction_has_one_answer_for_every_pair_of_verdicts() {
        // Every previous verdict (none, unrated, each rating) against every new one.
        let ratings = || std::iter::once(None).chain(Rating::ALL.iter().copied().map(Some));
        for current in ratings() {
            assert_eq!(Direction::between(None, current), Direction::First);
            for previous in ratings() {
                let expected = match (previous, current) {
                    (None, None) => Direction::Unchanged,
                    (None, Some(_)) => Direction::Rated,
                    (Some(_), None) => Direction::Unrated,
                    (Some(p), Some(c)) if c == p => Direction::Unchanged,
                    // ALL runs best first: a later index is a worse rating.
                    (Some(p), Some(c)) => {
                        let index = |r| Rating::ALL.iter().position(|x| *x == r).unwrap();
                        if index(c) < index(p) {
                            Direction::Improved
                        } else {
                            Direction::Declined
                        }
                    }
                };
                assert_eq!(
                    Direction::between(Some(previous), current),
                    expected,
                    "{previous:?} -> {current:?}"
                );
            }
        }
    }
}
