"""Column names and defaults shared by every engine module."""

USER_COL = "user_id"
ITEM_COL = "item_id"
TIME_COL = "timestamp"
TITLE_COL = "title"
EVENT_COL = "event"
WEIGHT_COL = "weight"

ITEM_REQUIRED = (ITEM_COL, TITLE_COL)
ITEM_OPTIONAL = ("category", "brand", "price", "description", "color", "image", "created_at")
INTERACTION_REQUIRED = (USER_COL, ITEM_COL, TIME_COL)
INTERACTION_OPTIONAL = (EVENT_COL, WEIGHT_COL)
EVENTS = ("view", "click", "cart", "purchase")

DEFAULT_K = 10
MAP_K = 12
SEED = 42
HEAD_SHARE = 0.8  # head items = most popular items that make this share of train interactions
DEFAULT_TEST_DAYS = 28
