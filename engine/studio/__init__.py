"""What the pages share: the loaded model and data (Studio), user segments and the segment map."""
