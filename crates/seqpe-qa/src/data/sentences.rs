//! Words and sentences of plain English text: the rule-based sentence splitter
//! ([`split_sentences`]), the word inside a token, and the stop list that decides which words may
//! be cloze answers ([`is_eligible_word`]).

use std::collections::HashSet;
use std::sync::OnceLock;

/// Letters an answer word needs.
pub const MIN_ANSWER_LETTERS: usize = 4;

/// A small English stop list (function words, auxiliaries, pronouns, common adverbs and forms of
/// address): such words are never answers, so answers are content words or names.
#[rustfmt::skip]
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "across", "after", "afterwards", "again", "against", "ago", "all",
    "almost", "alone", "along", "already", "also", "although", "always", "am", "among", "amongst",
    "an", "and", "another", "any", "anybody", "anyhow", "anyone", "anything", "anyway", "anywhere",
    "are", "around", "as", "at", "away", "back", "be", "became", "because", "become", "becomes",
    "been", "before", "beforehand", "behind", "being", "below", "beside", "besides", "between",
    "beyond", "both", "but", "by", "came", "can", "cannot", "come", "comes", "could", "did", "do",
    "does", "doing", "done", "down", "during", "each", "either", "else", "elsewhere", "enough",
    "even", "ever", "every", "everybody", "everyone", "everything", "everywhere", "except", "few",
    "first", "for", "former", "formerly", "from", "further", "get", "gets", "give", "given",
    "gives", "go", "goes", "going", "gone", "got", "had", "has", "have", "having", "he", "hence",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "in",
    "indeed", "into", "is", "it", "its", "itself", "just", "last", "least", "less", "let", "like",
    "made", "madam", "make", "makes", "many", "may", "me", "meanwhile", "might", "mine", "miss",
    "mister", "more", "moreover", "most", "mostly", "much", "must", "my", "myself", "neither",
    "never", "nevertheless", "next", "no", "nobody", "none", "noone", "nor", "not", "nothing",
    "now", "nowhere", "of", "off", "often", "on", "once", "one", "only", "onto", "or", "other",
    "others", "otherwise", "ought", "our", "ours", "ourselves", "out", "over", "own", "per",
    "perhaps", "quite", "rather", "really", "said", "same", "say", "says", "see", "seem", "seemed",
    "seeming", "seems", "several", "shall", "she", "should", "since", "so", "some", "somehow",
    "someone", "something", "sometime", "sometimes", "somewhere", "still", "such", "than", "that",
    "the", "their", "theirs", "them", "themselves", "then", "thence", "there", "thereafter",
    "thereby", "therefore", "therein", "thereupon", "these", "they", "this", "those", "though",
    "through", "throughout", "thus", "till", "to", "together", "too", "took", "toward", "towards",
    "under", "unless", "until", "up", "upon", "us", "very", "via", "was", "we", "well", "went",
    "were", "what", "whatever", "when", "whence", "whenever", "where", "whereas", "whereby",
    "wherein", "whether", "which", "while", "whither", "who", "whoever", "whole", "whom", "whose",
    "why", "will", "with", "within", "without", "would", "yet", "you", "your", "yours", "yourself",
    "yourselves",
];

/// Whether `word` (any case) is in [`STOP_WORDS`].
pub fn is_stop_word(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOP_WORDS.iter().copied().collect())
        .contains(word.to_lowercase().as_str())
}

/// Whether a word may be a cloze answer: alphabetic only, at least [`MIN_ANSWER_LETTERS`]
/// letters, not a stop word.
pub fn is_eligible_word(word: &str) -> bool {
    word.chars().count() >= MIN_ANSWER_LETTERS
        && word.chars().all(char::is_alphabetic)
        && !is_stop_word(word)
}

/// The word inside a whitespace token: the token without leading and trailing non-alphanumeric
/// characters (`"Darcy,"` → `"Darcy"`, `"``"` → `""`), as a byte range of the token.
pub(crate) fn word_span(token: &str) -> (usize, usize) {
    let start = token
        .char_indices()
        .find(|(_, c)| c.is_alphanumeric())
        .map(|(i, _)| i);
    match start {
        None => (0, 0),
        Some(start) => {
            let end = token
                .char_indices()
                .rev()
                .find(|(_, c)| c.is_alphanumeric())
                .map(|(i, c)| i + c.len_utf8())
                .unwrap_or(start);
            (start, end)
        }
    }
}

pub(crate) fn word_of(token: &str) -> &str {
    let (s, e) = word_span(token);
    &token[s..e]
}

/// Closing quotes and brackets that may follow a sentence's final punctuation
/// (`."`, Brown's `. ''`, `?)`).
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '\u{201D}' | '\u{2019}' | '\u{00BB}'
    )
}

/// Abbreviations whose final period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "Mt", "Ft", "Prof", "Rev", "Gen", "Col", "Capt",
    "Lt", "Sgt", "Gov", "Sen", "Rep", "Messrs", "Co", "Inc", "Ltd", "Corp", "No", "vs", "Jan",
    "Feb", "Mar", "Apr", "Aug", "Sept", "Sep", "Oct", "Nov", "Dec",
];

/// Whether a token ends a sentence: its last character before closing quotes/brackets is `.`,
/// `!` or `?`, and a `.` does not belong to an abbreviation (`Mr.`, `Dr.`), an initial (`J.`) or a
/// dotted abbreviation (`U.S.`, `a.m.`).
fn ends_sentence(token: &str) -> bool {
    let core = token.trim_end_matches(is_closer);
    match core.chars().last() {
        Some('!' | '?') => true,
        Some('.') => {
            let word = core
                .trim_end_matches('.')
                .trim_start_matches(|c: char| !c.is_alphanumeric());
            let initial = word.chars().count() == 1 && word.chars().all(char::is_uppercase);
            let dotted = word.contains('.') && word.chars().any(char::is_alphabetic);
            !(initial || dotted || ABBREVIATIONS.contains(&word))
        }
        _ => false,
    }
}

/// Split text into sentences: a rule-based splitter on whitespace tokens.
///
/// A sentence ends after a token ending in `.`, `!` or `?` (before any closing quotes/brackets),
/// except abbreviations (see `ABBREVIATIONS`), single-capital initials and dotted abbreviations,
/// and except when the next word starts with a lower-case letter (`"Why?" he asked.`).
/// Tokens that are only closing quotes/brackets right after the end (Brown's `''`) stay with the
/// sentence, so the Brown corpus's spaced punctuation (`he left . ''`) works as well as normal
/// text (`he left."`). Whitespace (line breaks included) is normalised to single spaces; a final
/// fragment without end punctuation is a sentence too.
pub fn split_sentences(text: &str) -> Vec<String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < tokens.len() {
        let end_here = ends_sentence(tokens[i]);
        i += 1;
        if end_here {
            while i < tokens.len() && tokens[i].chars().all(is_closer) {
                i += 1;
            }
            // `"Why?" he asked.`: a lower-case continuation means the sentence goes on.
            let continues = tokens
                .get(i)
                .and_then(|t| t.chars().find(|c| c.is_alphanumeric()))
                .is_some_and(char::is_lowercase);
            if !continues {
                sentences.push(tokens[start..i].join(" "));
                start = i;
            }
        }
    }
    if start < tokens.len() {
        sentences.push(tokens[start..].join(" "));
    }
    sentences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_normal_text_and_abbreviations() {
        let s =
            split_sentences("Mr. Darcy came in.  She smiled!\n\"Why?\" he asked. J. Smith left");
        assert_eq!(
            s,
            vec![
                "Mr. Darcy came in.",
                "She smiled!",
                "\"Why?\" he asked.",
                "J. Smith left"
            ]
        );
        let s = split_sentences("He lived in the U.S. for years. Then left.");
        assert_eq!(s, vec!["He lived in the U.S. for years.", "Then left."]);
    }

    #[test]
    fn sentences_brown_spaced_punctuation() {
        let s = split_sentences("He said `` yes . ''\nThen he left ; the end ? Fine !");
        assert_eq!(
            s,
            vec!["He said `` yes . ''", "Then he left ; the end ?", "Fine !"]
        );
    }

    #[test]
    fn word_spans() {
        assert_eq!(word_of("Darcy,"), "Darcy");
        assert_eq!(word_of("``"), "");
        assert_eq!(word_of("\"Well"), "Well");
        assert_eq!(word_of("_very_"), "very");
        assert!(is_eligible_word("Darcy"));
        assert!(!is_eligible_word("which"));
        assert!(!is_eligible_word("cat"));
        assert!(!is_eligible_word("Darcy's"));
        assert!(!is_eligible_word("1960s"));
    }

    #[test]
    fn stop_list_is_lowercase_and_unique() {
        let set: HashSet<_> = STOP_WORDS.iter().collect();
        assert_eq!(set.len(), STOP_WORDS.len());
        assert!(STOP_WORDS
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_lowercase())));
        assert!(is_stop_word("Which"));
    }
}
