"""Sessions: their tasks, their registry per connection, and the queue to the transport."""
