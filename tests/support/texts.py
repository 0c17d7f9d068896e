"""Texts several suites summarise and score: real prose, no personal data."""

DIARY = (
    "Today started badly because the train was cancelled and I waited in the rain for an hour. "
    "My manager was understanding when I finally arrived at the office. "
    "We spent the morning planning the release of the new mobile app. "
    "The design team showed beautiful screens for the onboarding flow. "
    "Lunch was a quick sandwich at my desk. "
    "In the afternoon the release plan slipped by a week because of a payment bug. "
    "I felt frustrated, but the team agreed on a clear plan to fix the bug. "
    "In the evening I called my sister and we laughed about our childhood holidays."
)
