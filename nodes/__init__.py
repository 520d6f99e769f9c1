"""ROS 2 nodes: social_perception (the pipeline on ROS topics) and laugh_responder; the only
place rclpy is imported. Imported as `socialmae_rt.nodes`; the ZeroMQ publisher is a sink
(socialmae_rt.sinks)."""
