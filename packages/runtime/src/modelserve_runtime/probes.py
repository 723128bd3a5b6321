"""Fixed probe texts: every export is validated on them, every benchmark can fall back to them
(short and long, plain and noisy, one far over any model's maximum length)."""

PROBE_TEXTS = [
    "I love this product, it works perfectly!",
    "This is the worst service I have ever experienced.",
    "The package arrived on Tuesday.",
    "meh",
    "Not bad at all, though the battery could last longer.",
    "Absolutely terrible. Broke after two days and support never answered my emails.",
    "ok",
    "The update fixed the crash but now the app drains my battery twice as fast.",
    "Best purchase of the year!!! Highly recommend to anyone who cooks.",
    "I'm not sure how I feel about the new design.",
    "The meeting has been moved to 3pm in room 204.",
    "What a waste of money and time, never again",
    "Thanks so much for the quick reply, that solved it :)",
    "It does what it says on the box.",
    "@airline my flight got cancelled again and nobody tells us anything #fail",
    "Great camera, awful software. The pictures are stunning but the gallery app crashes "
    "every time I try to share an album, and the settings reset after every update. I want "
    "to like this phone, I really do, but three weeks in I am close to returning it.",
    "The film is long. The acting is fine. The ending surprised me.",
    "Couldn't be happier with the results",
    "Delivery was late and the box was damaged, but the item itself is fine.",
    "no",
    "The hotel staff were friendly, the room was clean and the breakfast was excellent.",
    "I waited forty minutes on hold just to be disconnected.",
    "Version 2.3 adds dark mode and fixes the login bug.",
    "Honestly? Overrated.",
    " ".join(["A very long review that goes on and on about many small things."] * 40),
]
