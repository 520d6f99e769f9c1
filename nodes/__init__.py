"""ROS 2 nodes and the ZeroMQ publisher; the only place rclpy is imported.

Imported as `socialmae_rt.nodes`. The nodes arrive with the ROS issue.
"""
