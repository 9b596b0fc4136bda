"""The assistant: engines that turn a conversation into a reply, acting only through registered tools."""
